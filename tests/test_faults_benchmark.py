"""``python -m benchmarks.faults --quick``: a few attempts of each area; none crashes, goes silent or loses data."""

import pytest

pytest.importorskip("wandb")
pytest.importorskip("tensorboard")

from benchmarks.faults import OUTCOMES, all_attempts, run, table


def test_the_quick_fault_run_classifies_every_attempt_with_no_crash_silence_or_loss():
    outcomes = run([attempt for attempt in all_attempts(quick=True) if attempt.area != "trainer"])
    assert {o.kind for o in outcomes} <= set(OUTCOMES)
    bad = [
        f"{o.attempt.area} / {o.attempt.name}: {o.kind}: {o.detail}"
        for o in outcomes
        if o.kind not in ("clear", "graceful")
    ]
    assert not bad, bad
    assert table(outcomes).splitlines()[-1].startswith(f"| total | {len(outcomes)} |")
