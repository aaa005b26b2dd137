"""A Griffe extension for the API reference: read the package's docstrings as Markdown.

The docstrings are Google style as torchmetrics writes them: a singular ``Example:`` heading (which ruff's pydocstyle
accepts, but Griffe only knows as ``Examples:``, rendering the doctest as an admonition whose output lines such as
``[False, True]`` read as links) and Sphinx roles such as ``:class:`~torchmetrics.Metric```, which Markdown shows
verbatim. Both are rewritten before Griffe parses a docstring; the package code is unchanged. Loaded from
``mkdocs.yml``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.M)
_SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _code_span(role: re.Match[str]) -> str:
    target = role["target"]
    return f"`{target.rsplit('.', 1)[-1] if role['tilde'] else target}`"  # `~a.b.C` shows as `C`, as in Sphinx


def to_markdown(docstring: str) -> str:
    """The docstring with ``Example:`` headings as ``Examples:`` and Sphinx roles as code spans."""
    return _SPHINX_ROLE.sub(_code_span, _SINGULAR_EXAMPLE.sub(r"\1Examples:", docstring))


class DocstringMarkup(griffe.Extension):
    """Rewrite each object's docstring with ``to_markdown`` as Griffe creates the object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of one object."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
