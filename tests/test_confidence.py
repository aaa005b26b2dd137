"""Confidence in the verdict: bootstrap intervals, the three-way verdict, episodes needed, and where they show."""

import json

import pytest
import torch

from simgate_tracking import GateResult, SimulatorGate, episodes_needed, evaluate
from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.callbacks import GateEarlyStopping
from simgate_tracking.cli import main
from simgate_tracking.confidence import batched_bootstrap_interval, bootstrap_interval, gate_intervals
from simgate_tracking.functional.takes import relative_to_spread
from simgate_tracking.loggers.text import scores_markdown
from simgate_tracking.report import GateCheck, verdict_text
from simgate_tracking.toy import ToyWorldModel, make_probe_set

POPULATION = 100_000
DRAWS = 400


def _populations():
    """Per-episode statistics of large populations, as (N, 1 + R) rows, and each population's axis value."""
    g = torch.Generator().manual_seed(7)

    def beta(a, b):
        return torch.distributions.Beta(torch.tensor(a), torch.tensor(b)).sample((POPULATION,)).double()

    torch.manual_seed(7)
    skewed = (1 - torch.empty(POPULATION).exponential_(8.0, generator=g)).clamp(0, 1).double()
    plain = {"bounded beta(5, 2)": beta(5.0, 2.0), "u-shaped beta(0.5, 0.5)": beta(0.5, 0.5)}
    plain |= {"skewed 1 - exp": skewed, "skewed beta(8, 1)": beta(8.0, 1.0)}
    populations = {name: (torch.stack([x, torch.ones_like(x)], 1), float(x.mean())) for name, x in plain.items()}
    # real takes: the model's agreement m and three takes' agreements, each episode's spread its own
    m, s = beta(4.0, 3.0), (0.3 + 0.7 * beta(2.0, 2.0))
    takes = torch.stack([s * (0.8 + 0.4 * torch.rand(POPULATION, generator=g).double()) for _ in range(3)], 1)
    m = (m * s).clamp(max=1.0)
    rows = torch.cat([m[:, None], takes], 1)
    populations["real takes, ratio of sums"] = (rows, float(relative_to_spread(m.mean(), takes.mean(0))[0]))
    return populations


@pytest.mark.parametrize("episodes", [8, 16, 32])
def test_95_percent_intervals_cover_the_population_value(episodes):
    coverage = {}
    g = torch.Generator().manual_seed(episodes)
    for name, (rows, truth) in _populations().items():
        probe_sets = rows[torch.randint(len(rows), (DRAWS, episodes), generator=g)]
        ends = batched_bootstrap_interval(probe_sets, level=0.95, num_resamples=1000)
        coverage[name] = float(((ends[:, 0] <= truth) & (truth <= ends[:, 1])).double().mean())
    assert min(coverage.values()) >= 0.90, coverage
    assert 0.92 <= sum(coverage.values()) / len(coverage) <= 0.98, coverage


def test_batched_intervals_are_the_intervals_of_each_probe_set():
    rows = torch.rand(3, 12, 2, generator=torch.Generator().manual_seed(0)).double()
    rows[..., 1] = 1.0
    batched = batched_bootstrap_interval(rows, seed=3)
    for i in range(3):
        alone = bootstrap_interval(rows[i, :, 0], seed=3)
        # the same maths; the resamples differ (one stream for all sets), so the ends agree to resampling noise
        assert alone == pytest.approx(batched[i].tolist(), abs=0.03)
        assert alone[0] <= float(rows[i, :, 0].mean()) <= alone[1]


def test_seeded_intervals_repeat_and_widen_with_the_level():
    scores = torch.rand(16, generator=torch.Generator().manual_seed(1))
    assert bootstrap_interval(scores) == bootstrap_interval(scores.clone())
    assert bootstrap_interval(scores, seed=1) != bootstrap_interval(scores, seed=2)
    narrow, wide = bootstrap_interval(scores, level=0.8), bootstrap_interval(scores, level=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_takes_resample_episodes_and_recompute_the_ratio_of_sums():
    # half the episodes: reality barely varies and the model matches it (ratio 1); half: reality varies a lot and the
    # model gets half of it. The axis divides sums (0.55); the mean of per-episode ratios (0.75) is not the axis.
    rows = torch.tensor([[0.01, 0.01, 0.01]] * 10 + [[0.5, 1.0, 1.0]] * 10, dtype=torch.float64)
    rows[::3, 0] *= 0.9  # some spread, so the interval is not a point
    low, high = bootstrap_interval(rows)
    axis = float(relative_to_spread(rows[:, 0].sum(), rows[:, 1:].sum(0))[0])
    assert low <= axis <= high < 0.7
    assert bootstrap_interval(rows, reality=True) == (1.0, 1.0)  # every take agrees with the others alike


def test_nan_episodes_are_left_out_and_one_episode_knows_nothing():
    scores = torch.tensor([0.6, float("nan"), 0.7, 0.8])
    assert bootstrap_interval(scores) == bootstrap_interval(torch.tensor([0.6, 0.7, 0.8]))
    assert bootstrap_interval(torch.tensor([0.7, float("nan")])) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_interval(torch.rand(5), level=1.0), "`level` to be a float in (0, 1) but got 1.0"),
        (lambda: bootstrap_interval(torch.rand(5), level=0), "`level` to be a float in (0, 1) but got 0"),
        (lambda: bootstrap_interval(torch.rand(5), num_resamples=5), "`num_resamples` to be an int >= 10 but got 5"),
        (lambda: bootstrap_interval(torch.rand(5, 1)), "`episode_statistics` as per-episode scores (n,)"),
        (lambda: bootstrap_interval(torch.full((3,), float("nan"))), "at least one scored episode but got none"),
        (lambda: episodes_needed(torch.rand(5), width=0.0), "`width` to be a float in (0, 1] but got 0.0"),
        (lambda: episodes_needed(torch.rand(5), width=-0.1), "`width` to be a float in (0, 1] but got -0.1"),
        (lambda: episodes_needed(torch.rand(5), width=0.1, level=1.5), "`level` to be a float in (0, 1) but got 1.5"),
        (lambda: episodes_needed(torch.rand(1), width=0.1), "at least 2 scored episodes"),
        (lambda: GateEarlyStopping(confident="yes"), "`confident` to be a bool but got 'yes'"),
        (lambda: SimulatorGate().evaluate({"controllability": 0.7}, confidence_level=2), "`confidence_level`"),
        (
            lambda: SimulatorGate().evaluate({"controllability": 0.7}, intervals={"controllability": (0.8, 0.6)}),
            "`intervals` to map gated scores",
        ),
    ],
)
def test_bad_input_names_the_field_expected_and_given(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        call()


def test_episodes_needed_gives_an_interval_about_that_wide():
    g = torch.Generator().manual_seed(4)
    population = torch.distributions.Beta(torch.tensor(5.0), torch.tensor(2.0)).sample((50_000,))
    pilot = population[torch.randint(len(population), (400,), generator=g)]  # a spread well measured
    needed = episodes_needed(pilot, width=0.05)
    widths = []
    for _ in range(20):
        low, high = bootstrap_interval(population[torch.randint(len(population), (needed,), generator=g)])
        widths.append(high - low)
    assert 0.045 <= sum(widths) / len(widths) <= 0.055, (needed, widths)
    assert episodes_needed(pilot, width=0.025) == pytest.approx(4 * needed, rel=0.02)  # half the width, 4x


def _result(low, high, score=0.7, threshold=0.65):
    scores = {"controllability": 0.9, "object_persistence": score}
    intervals = {"controllability": (0.85, 0.95), "object_persistence": (low, high)}
    return SimulatorGate(threshold).evaluate(scores, intervals=intervals)


@pytest.mark.parametrize(
    ("low", "high", "score", "verdict", "passed"),
    [
        (0.66, 0.75, 0.70, "pass", True),
        (0.60, 0.75, 0.70, "inconclusive", True),
        (0.55, 0.70, 0.64, "inconclusive", False),
        (0.50, 0.65, 0.60, "fail", False),
    ],
)
def test_verdict_is_pass_fail_or_inconclusive_and_passed_stays_strict(low, high, score, verdict, passed):
    result = _result(low, high, score)
    assert (result.verdict, result.passed) == (verdict, passed)
    assert result.inconclusive_axes == (("object_persistence",) if verdict == "inconclusive" else ())
    assert SimulatorGate().evaluate({"controllability": score}).verdict == ("pass" if score > 0.65 else "fail")


def test_text_and_alerts_say_inconclusive_with_axis_and_interval():
    result = _result(0.58, 0.75, 0.64)
    assert str(result).splitlines()[0] == (
        "simulator gate: INCONCLUSIVE at 95% (FAIL on point scores) (weakest axis: object_persistence)"
    )
    assert "object_persistence        0.640 [0.580, 0.750]  > 0.65  <- weakest, inconclusive" in str(result)
    assert verdict_text(result) == "INCONCLUSIVE, weakest object_persistence 0.640 [0.580, 0.750] (threshold 0.65)"
    table = scores_markdown(GateCheck(result, step=7, epoch=0, manifest_hash="ab"))
    assert "| object_persistence | 0.640 | [0.580, 0.750] | 0.650 | inconclusive (weakest) |" in table
    (alert,) = [a for a in AlertPolicy().update(result, step=7) if a.kind == "gate_inconclusive"]
    assert alert.level == "WARN" and "object_persistence 0.640 [0.580, 0.750] holds 0.65" in alert.title
    assert "score more probe episodes" in alert.text
    # a confident failure still alerts as a failure, with its interval
    failed = AlertPolicy().update(_result(0.50, 0.64, 0.60), step=8)
    assert failed[0].kind == "gate_failed" and "[0.500, 0.640]" in failed[0].title


def test_json_round_trip_and_older_reports_without_intervals():
    result = _result(0.58, 0.75, 0.64)
    again = GateResult.from_json(result.to_json())
    assert again == result and again.verdict == "inconclusive"
    assert json.loads(result.to_json())["intervals"]["object_persistence"] == [0.58, 0.75]
    old = result.to_dict()
    for key in ("intervals", "confidence_level", "verdict", "real_baseline_intervals"):
        old.pop(key)
    loaded = GateResult.from_dict(old)
    assert loaded.intervals == {} and loaded.verdict == "fail" and not loaded.passed


def test_confident_early_stopping_counts_only_failures_below_the_threshold():
    inconclusive_fail = _result(0.55, 0.70, 0.64)  # fails on its point score only
    confident_fail = _result(0.50, 0.64, 0.60)
    plain, confident = GateEarlyStopping(patience=2), GateEarlyStopping(patience=2, confident=True)
    assert [plain.decide(inconclusive_fail) for _ in range(2)] == [False, True]
    assert [confident.decide(inconclusive_fail) for _ in range(3)] == [False, False, False]
    assert [confident.decide(r) for r in (confident_fail, inconclusive_fail, confident_fail, confident_fail)] == [
        False,
        False,
        False,
        True,
    ]
    assert "at 95% confidence" in confident.reason and "[0.500, 0.640]" in confident.reason
    assert confident.state_key != plain.state_key
    assert plain.state_key == GateEarlyStopping(patience=2).state_key


def test_evaluate_takes_seeded_intervals_of_every_frame_axis():
    probe_set = make_probe_set(num_episodes=6, num_branches=2, horizon=6, seed=0)
    model = ToyWorldModel(frame_shape=probe_set.frame_shape, action_dim=probe_set.action_dim, context_frames=2)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))  # some per-episode spread
    first, second = evaluate(model, probe_set), evaluate(model, probe_set)
    assert set(first.intervals) == {"controllability", "temporal_consistency", "object_persistence"} | {
        "reset_reproducibility"
    }
    assert first.intervals == second.intervals
    for axis, (low, high) in first.intervals.items():
        assert low <= first.scores[axis] <= high
    wider = evaluate(model, probe_set, confidence_level=0.99)
    assert all(
        wider.intervals[a][1] - wider.intervals[a][0] >= first.intervals[a][1] - first.intervals[a][0]
        for a in first.intervals
    )


def test_gate_intervals_give_reality_an_interval_with_takes_only():
    g = torch.Generator().manual_seed(0)
    statistics = {
        "controllability": torch.rand(10, generator=g),
        "temporal_consistency": torch.rand(10, 4, generator=g),
    }
    intervals, reality = gate_intervals(statistics)
    assert set(intervals) == set(statistics) and set(reality) == {"temporal_consistency"}
    low, high = reality["temporal_consistency"]
    assert (
        low
        <= float(
            relative_to_spread(
                statistics["temporal_consistency"][:, 0].sum(), statistics["temporal_consistency"][:, 1:].sum(0)
            )[1]
        )
        <= high
    )


def test_simgate_report_shows_intervals_and_episodes_needed(tmp_path, capsys):
    result = _result(0.58, 0.75, 0.64)
    episodes = {"episode_index": list(range(8)), "object_persistence": [0.9, 0.5, 0.7, 0.8, 0.4, 0.66, 0.52, 0.64]}
    GateCheck(result, step=40, epoch=1, manifest_hash="ab12", episode_scores=episodes).write(tmp_path)
    assert main(["report", str(tmp_path), "--png", str(tmp_path / "curves.png")]) == 0
    out = capsys.readouterr().out
    assert "INCONCLUSIVE at 95%" in out and "0.640 [0.580, 0.750]" in out
    needed = episodes_needed(torch.tensor(episodes["object_persistence"]), width=0.02)
    assert f"episodes needed: about {needed} for a 95% interval of object_persistence 0.020 wide" in out


def test_tensorboard_draws_each_axis_in_its_interval_band(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from torch.utils.tensorboard import SummaryWriter

    from simgate_tracking.loggers import TensorBoardGateLogger

    writer = SummaryWriter(str(tmp_path))
    logger = TensorBoardGateLogger(writer, log_media=False)
    for step, (low, high) in ((100, (0.55, 0.70)), (200, (0.66, 0.75))):
        logger.log_check(GateCheck(_result(low, high), step=step, epoch=0, manifest_hash="ab"))
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    assert [e.value for e in events.Scalars("simgate/low/object_persistence")] == pytest.approx([0.55, 0.66])
    assert [e.value for e in events.Scalars("simgate/high/object_persistence")] == pytest.approx([0.70, 0.75])
    assert [e.value for e in events.Scalars("simgate/inconclusive")] == [1.0, 0.0]
    (config,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    (band,) = [
        c
        for cat in layout.category
        if cat.title == "confidence intervals"
        for c in cat.chart
        if c.title == ("object_persistence")
    ]
    series = band.margin.series[0]
    assert (series.value, series.lower, series.upper) == tuple(
        f"simgate/{kind}object_persistence" for kind in ("", "low/", "high/")
    )


def test_wandb_run_file_holds_low_and_high_curves(tmp_path):
    wandb = pytest.importorskip("wandb")
    from simgate_tracking.loggers import WandbGateLogger
    from tests.helpers.wandb_reader import history_rows, read_finished_run

    run = wandb.init(project="simgate-tests", mode="offline", dir=tmp_path, settings=wandb.Settings(silent=True))
    WandbGateLogger(run, log_media=False).log_check(GateCheck(_result(0.58, 0.75, 0.64), 300, 1, "ab"))
    run.finish()
    (row,) = [row for row in history_rows(read_finished_run(tmp_path)) if "simgate/min_axis" in row]
    assert (row["simgate/low/object_persistence"], row["simgate/high/object_persistence"]) == (0.58, 0.75)
    assert row["simgate/inconclusive"] == 1.0


def test_scorecard_picture_draws_error_bars_and_an_amber_inconclusive_bar():
    pytest.importorskip("PIL")
    from simgate_tracking.loggers import scorecard_image
    from simgate_tracking.loggers.scorecard_image import INCONCLUSIVE_COLOUR

    with_bars = scorecard_image(GateCheck(_result(0.58, 0.75, 0.64), step=1, epoch=0, manifest_hash="ab"))
    plain = scorecard_image(
        GateCheck(
            SimulatorGate().evaluate({"controllability": 0.9, "object_persistence": 0.64}),
            step=1,
            epoch=0,
            manifest_hash="ab",
        )
    )
    assert with_bars.shape[0] > plain.shape[0]  # the legend line that names the level
    amber = torch.tensor([int(INCONCLUSIVE_COLOUR[i : i + 2], 16) for i in (1, 3, 5)], dtype=torch.uint8)
    assert bool((torch.from_numpy(with_bars) == amber).all(-1).any())
    assert not bool((torch.from_numpy(plain) == amber).all(-1).any())
    dark = (torch.from_numpy(with_bars).int().sum(-1) < 100).sum()
    assert dark > (torch.from_numpy(plain).int().sum(-1) < 100).sum()  # whiskers and caps
