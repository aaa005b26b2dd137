"""Copy README.md's sections into the documentation pages: ``python docs/sync_readme.py``.

README.md delimits its sections with ``<!-- section:NAME -->`` ... ``<!-- /section:NAME -->``. A page in ``docs/``
that holds the same two markers gets README's text of that section between them, its links into ``docs/`` made
relative to the page (``docs/img/x.png`` becomes ``img/x.png`` on a top-level page). A section README no longer has
is left as the page has it. ``--check`` changes nothing and exits with status 1 if a page is out of date.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SECTION = re.compile(r"(<!-- section:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /section:(?P=name) -->)", flags=re.S)
DOCS_LINK = re.compile(r"(\]\(|src=\")docs/")  # a Markdown link or image, or an HTML src, into docs/
CODE_IN_TABLE_ROW = re.compile(r"`[^`\n]*`")


def sections(text: str) -> dict[str, str]:
    """Every section of a Markdown text: its name and the text between its two markers."""
    return {match["name"]: match["body"] for match in SECTION.finditer(text)}


def for_page(body: str, page: Path) -> str:
    """README's text of a section as it reads on ``page``.

    Links into ``docs/`` become relative to the page's folder, and pipes escaped inside a table's code spans lose
    their backslash.
    """
    prefix = Path(os.path.relpath(DOCS, page.parent)).as_posix()
    into = "" if prefix == "." else prefix + "/"
    body = DOCS_LINK.sub(lambda match: match[1] + into, body)
    # GitHub needs `\|` for a pipe in a table's code span and shows `|`; Python-Markdown shows the backslash
    rows = [CODE_IN_TABLE_ROW.sub(_unescape_pipes, row) if row.startswith("|") else row for row in body.split("\n")]
    return "\n".join(rows)


def _unescape_pipes(code: re.Match[str]) -> str:
    return code[0].replace("\\|", "|")


def synced(page: Path, readme: dict[str, str]) -> str:
    """The page's text with every section README has replaced by README's current text of it."""

    def replace(match: re.Match[str]) -> str:
        if match["name"] not in readme:
            return match[0]
        return match[1] + for_page(readme[match["name"]], page) + match[4]

    return SECTION.sub(replace, page.read_text())


def pages() -> list[Path]:
    """The documentation pages, in a stable order."""
    return sorted(DOCS.rglob("*.md"))


def main(argv: Sequence[str] | None = None) -> int:
    """Sync every page (or, with ``--check``, only report the pages that are out of date)."""
    parser = argparse.ArgumentParser(prog="python docs/sync_readme.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    readme = sections(README.read_text())
    stale = []
    for page in pages():
        text = synced(page, readme)
        if text != page.read_text():
            stale.append(page.relative_to(ROOT).as_posix())
            if not args.check:
                page.write_text(text)
    verb = "out of date" if args.check else "synced"
    print(f"{verb}: {', '.join(stale)}" if stale else "every page matches README.md")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
