"""What every gate logger is, the scalars they share, and the guard that keeps a broken one from stopping training."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from simgate_tracking._utils import PREFIX
from simgate_tracking.gate import AXES, GateResult
from simgate_tracking.report import GateCheck

_T = TypeVar("_T")


class PartBackoff:
    """When an optional part of a dashboard (media, alerts) that failed is tried again: after 1, 2, 4, ... checks.

    Each new failure doubles the number of checks the part is skipped for; a success resets it to ``first_skip``
    (with ``first_skip=0`` the first failure is retried at the very next check, then after 1, 2, 4, ...).

    Example:
        >>> backoff = PartBackoff()
        >>> attempts = []
        >>> for check in range(1, 12):
        ...     if backoff.due():
        ...         attempts.append(check)
        ...         _ = backoff.failed()  # skipped for this many checks now
        >>> attempts  # skipped for 1, then 2, then 4 checks
        [1, 3, 6, 11]
    """

    def __init__(self, first_skip: int = 1) -> None:
        self.first_skip = first_skip
        self.skip = 0
        self.next_skip = first_skip

    def due(self) -> bool:
        """Whether the part runs at this check; a skipped check counts down the back-off."""
        if self.skip:
            self.skip -= 1
            return False
        return True

    def failed(self) -> int:
        """Record a failure; return how many checks the part is now skipped for."""
        self.skip, self.next_skip = self.next_skip, max(1, 2 * self.next_skip)
        return self.skip

    def succeeded(self) -> None:
        """Record a success: the next failure backs off as the first one did."""
        self.next_skip = self.first_skip


class GateLogger(ABC):
    """A dashboard for gate checks: it renders what a check holds (curves, media, alerts) and never scores anything.

    Subclasses implement :meth:`log_check`; :meth:`finalize` flushes at the end of a run. ``lightning_logger`` is
    the Lightning logger a gate logger wraps (None when it wraps a bare run or writer), so a callback knows which
    Lightning loggers already receive the gate's scalars.

    Example:
        >>> class Printer(GateLogger):
        ...     def log_check(self, check: GateCheck) -> None:
        ...         print(check.step, check.result.passed)
        >>> Printer().lightning_logger is None
        True
    """

    lightning_logger: Any = None

    def optional_part(self, part: str, step: int, call: Callable[[], _T]) -> _T | None:
        """Run one optional part of a check (``"media"``, ``"alerts"``); a failure drops only that part.

        The failure warns, naming the part, the step and the error; the part is then skipped for 1, 2, 4, ... checks
        (doubling with each new failure, see :class:`PartBackoff`) and tried again, while the curves keep coming.

        Returns:
            What ``call`` returned, or None when it failed or the part is backing off.
        """
        if not self.part_due(part):
            return None
        try:
            value = call()
        except Exception as err:  # disk full, network down: the curves go on without this part
            self.part_failed(part, step, err)
            return None
        self.part_succeeded(part)
        return value

    def _backoff(self, part: str) -> PartBackoff:
        backoffs: dict[str, PartBackoff] = self.__dict__.setdefault("_part_backoffs", {})
        return backoffs.setdefault(part, PartBackoff())

    def part_due(self, part: str) -> bool:
        """Whether ``part`` runs at this check (False while it backs off after a failure)."""
        return self._backoff(part).due()

    def part_failed(self, part: str, step: int, err: BaseException) -> None:
        """Warn that ``part`` failed at ``step`` and back it off."""
        skipped = self._backoff(part).failed()
        warnings.warn(
            f"{type(self).__name__}: {part} failed at step {step} ({type(err).__name__}: {err}); the curves go on, "
            f"{part} skipped at the next {skipped} check(s), then tried again",
            UserWarning,
            stacklevel=3,
        )

    def part_succeeded(self, part: str) -> None:
        """Record that ``part`` worked: its next failure backs off for one check again."""
        self._backoff(part).succeeded()

    @abstractmethod
    def log_check(self, check: GateCheck) -> None:
        """Render one gate check on the dashboard."""

    def finalize(self) -> None:  # noqa: B027  (an optional hook: most dashboards have nothing to flush)
        """Flush what is buffered; the wrapped run or writer stays open (its owner closes it)."""


def gate_scalars(result: GateResult, thresholds: bool = True) -> dict[str, float]:
    """The scalar view of a verdict, under ``simgate/``.

    Keys: every gated score and every extra (``psnr``, ``ssim``, ``delta_psnr``), ``min_axis``, ``passed`` (1.0 or
    0.0), ``weakest_axis`` (its index in :data:`~simgate_tracking.AXES`, -1 for a non-axis gated score) and, with
    ``thresholds``, ``threshold/<axis>`` for every gated score and ``reality/<axis>``, reality's own score on every
    simulator axis (1 with one real take): reference lines a chart draws beside each curve. When the result has
    confidence intervals, ``thresholds`` also adds ``low/<axis>`` and ``high/<axis>``, each axis's interval (a band
    around its curve), and ``inconclusive`` (1.0 when the intervals cannot tell pass from fail, else 0.0).

    Args:
        result: The verdict.
        thresholds: Also return each gated score's threshold and reality's own score, so a chart can draw them beside
            the curve.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64, "psnr": 31.0})
        >>> for key, value in gate_scalars(result).items():
        ...     print(f"{key} = {value:g}")
        simgate/controllability = 0.71
        simgate/object_persistence = 0.64
        simgate/psnr = 31
        simgate/min_axis = 0.64
        simgate/passed = 0
        simgate/weakest_axis = 2
        simgate/threshold/controllability = 0.65
        simgate/threshold/object_persistence = 0.65
        simgate/reality/controllability = 1
        simgate/reality/object_persistence = 1
    """
    scalars = {f"{PREFIX}/{name}": float(value) for name, value in {**result.scores, **result.extras}.items()}
    scalars[f"{PREFIX}/min_axis"] = float(result.min_axis)
    scalars[f"{PREFIX}/passed"] = float(result.passed)
    scalars[f"{PREFIX}/weakest_axis"] = float(AXES.index(result.weakest_axis) if result.weakest_axis in AXES else -1)
    if thresholds:
        scalars.update({f"{PREFIX}/threshold/{name}": float(value) for name, value in result.thresholds.items()})
        scalars.update({f"{PREFIX}/reality/{name}": float(value) for name, value in result.real_baseline.items()})
        if result.intervals:
            for end, index in (("low", 0), ("high", 1)):
                scalars.update({f"{PREFIX}/{end}/{name}": ends[index] for name, ends in result.intervals.items()})
            scalars[f"{PREFIX}/inconclusive"] = float(result.verdict == "inconclusive")
    return scalars


def media_available(logger_name: str) -> bool:
    """Whether Pillow is installed; if not, warn once that ``logger_name`` logs scalars only."""
    try:
        import PIL  # noqa: F401
    except ModuleNotFoundError as err:
        warnings.warn(
            f"{logger_name} logs no rollout videos or scorecard charts: {err.name} is missing; install it with "
            "`pip install simgate-tracking[media]`",
            UserWarning,
            stacklevel=3,
        )
        return False
    return True


def safe_log(loggers: Iterable[GateLogger], check: GateCheck) -> list[GateLogger]:
    """Log ``check`` to every logger; one that raises gives one warning and is left out of the returned list.

    Keep the returned list and pass it to the next call, so a dead dashboard (network down, disk full) warns once
    and training goes on without it.

    Args:
        loggers: The gate loggers still alive.
        check: The gate check to log.

    Returns:
        The loggers that logged ``check`` without raising.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> class DiskFull(GateLogger):
        ...     def log_check(self, check: GateCheck) -> None:
        ...         raise OSError("No space left on device")
        >>> check = GateCheck(SimulatorGate().evaluate({"controllability": 0.9}), step=5, epoch=0, manifest_hash="0")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     alive = safe_log([DiskFull()], check)
        >>> alive
        []
        >>> print(caught[0].message)
        DiskFull failed at step 5 and is switched off: OSError: No space left on device
    """
    alive = []
    for logger in loggers:
        try:
            logger.log_check(check)
        except Exception as err:  # a dashboard must never stop training
            warnings.warn(
                f"{type(logger).__name__} failed at step {check.step} and is switched off: {type(err).__name__}: {err}",
                UserWarning,
                stacklevel=2,
            )
        else:
            alive.append(logger)
    return alive


def safe_finalize(loggers: Iterable[GateLogger]) -> None:
    """Finalize every logger; one that raises gives a warning and the others still finalize."""
    for logger in loggers:
        try:
            logger.finalize()
        except Exception as err:  # the run is over: report, never raise
            warnings.warn(f"{type(logger).__name__} failed to finalize: {type(err).__name__}: {err}", stacklevel=2)
