"""``python -m benchmarks.faults``: try bad inputs and faults as a careless or hostile user would; classify outcomes.

Every attempt runs one call (a constructor, a probe file load, a check with a broken world model, a corrupted
checkpoint state, a dashboard whose disk fills, ``simgate report`` on a bad file...) and names the field or argument
an honest answer must mention. The outcome is read from what happened, never from a per-case label:

- clear: an exception whose message names the field;
- graceful: it went on, with a warning (or a printed line) naming the field or coming from the package, or with a
  result the attempt's own check finds right (a broken world model fails the gate);
- silent: it went on without a word although the input was wrong, or its result fails the attempt's own check;
- crash: an exception that names no field (a raw ``TypeError``, ``KeyError``, a traceback from deep inside);
- lost: a dashboard fault after which a later check's curves are missing.

Examples::

    python -m benchmarks.faults               # every attempt, a table by area and the totals
    python -m benchmarks.faults --quick       # a few attempts of each area (seconds)
    python -m benchmarks.faults --show silent --show crash   # also list those attempts, with what happened
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTCOMES = ("clear", "graceful", "silent", "crash", "lost")
PACKAGE_DIR = str(Path(__file__).resolve().parents[1] / "simgate_tracking")


@dataclass
class Attempt:
    """One bad input or fault.

    Attributes:
        area: What the user touched (``constructor``, ``probe file``, ``rollout``, ...).
        name: What was tried.
        field: The field, argument or file an honest answer names.
        call: Runs the attempt in ``workdir``; returns what it produced (a result, a return code, ...).
        wrong: A result to judge: returns a description of what is wrong with it, or None if it is right.
    """

    area: str
    name: str
    field: str
    call: Callable[[Path], Any]
    wrong: Callable[[Any], str | None] | None = None


@dataclass
class Outcome:
    """What happened to one attempt."""

    attempt: Attempt
    kind: str
    detail: str


def _mentions(text: str, field: str) -> bool:
    return field.lower() in text.lower()


def classify(attempt: Attempt, workdir: Path) -> Outcome:
    """Run ``attempt`` and classify what happened from the exception, the warnings and printed lines, the result."""
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        warnings.simplefilter("always")
        try:
            result = attempt.call(workdir)
        except SystemExit as stop:  # argparse and the CLI: a message on stderr
            text = err.getvalue() + out.getvalue()
            kind = "clear" if stop.code not in (0, None) and _mentions(text, attempt.field) else "crash"
            return Outcome(attempt, kind, f"exit {stop.code}: {text.strip()[-160:]}")
        except Exception as error:
            # the notes Python shows under the traceback count: a user's own error passed through, saying where
            message = "\n".join([f"{type(error).__name__}: {error}", *getattr(error, "__notes__", [])])
            return Outcome(attempt, "clear" if _mentions(message, attempt.field) else "crash", message[:200])
    said = [str(w.message) for w in caught if _mentions(str(w.message), attempt.field) or PACKAGE_DIR in w.filename]
    said += [line for line in (out.getvalue() + err.getvalue()).splitlines() if _mentions(line, attempt.field)]
    problem = attempt.wrong(result) if attempt.wrong is not None else None
    if problem is not None and problem.startswith("lost"):
        return Outcome(attempt, "lost", problem)
    if said:
        return Outcome(attempt, "graceful", said[0][:200] + (f" (but {problem})" if problem else ""))
    if attempt.wrong is not None and problem is None:  # a broken model the verdict fails: the gate did its job
        return Outcome(attempt, "graceful", f"went on; the result is right: {result!r}"[:200])
    return Outcome(attempt, "silent", problem or f"accepted without a word: {result!r}"[:200])


def all_attempts(quick: bool = False) -> list[Attempt]:
    """Every attempt, area by area; ``quick``: the first few of each area."""
    from benchmarks import fault_cases, fault_cases_runtime

    attempts: list[Attempt] = []
    for build in [*fault_cases.AREAS, *fault_cases_runtime.AREAS]:
        found = build()
        attempts.extend(found[:4] if quick else found)
    return attempts


def run(attempts: Sequence[Attempt]) -> list[Outcome]:
    """Classify every attempt, each in a fresh temporary directory."""
    outcomes = []
    for attempt in attempts:
        with tempfile.TemporaryDirectory() as directory:
            outcomes.append(classify(attempt, Path(directory)))
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    """A Markdown table: attempts and outcomes by area, and the totals."""
    areas = list(dict.fromkeys(o.attempt.area for o in outcomes))
    rows = ["| area | attempts | " + " | ".join(OUTCOMES) + " |", "|---" * (len(OUTCOMES) + 2) + "|"]
    for area in [*areas, "total"]:
        counts = Counter(o.kind for o in outcomes if area in ("total", o.attempt.area))
        total = sum(counts.values())
        rows.append(f"| {area} | {total} | " + " | ".join(str(counts[kind]) for kind in OUTCOMES) + " |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the attempts and print the table; the exit code is 0 (the figures are the result)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few attempts of each area")
    parser.add_argument("--show", action="append", choices=OUTCOMES, default=[], help="list attempts with this outcome")
    args = parser.parse_args(argv)
    outcomes = run(all_attempts(quick=args.quick))
    print(table(outcomes))
    for outcome in outcomes:
        if outcome.kind in args.show:
            print(f"- [{outcome.kind}] {outcome.attempt.area} / {outcome.attempt.name}: {outcome.detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
