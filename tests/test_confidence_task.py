"""Task validity's interval: episodes resampled, the score recomputed from their summed contribution rows."""

import pytest
import torch

from simgate_tracking import ProbeSet, evaluate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.confidence import EpisodeStatistic, batched_bootstrap_interval, bootstrap_interval, gate_intervals
from simgate_tracking.functional.task_statistics import task_agreement_statistic
from simgate_tracking.metrics import SimulatorScorecard, TaskValidity
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, trainer

POPULATION = 100_000
DRAWS = 400
CASES = [("agreement", 1), ("agreement", 4), ("ranking", 1), ("ranking", 3), ("decision", 1)]


def _outcomes(mode, takes, episodes, generator):
    """Judged and real outcomes (and policy ids) of ``episodes`` episodes, as TaskValidity.update takes them."""
    if mode == "decision":
        real = torch.rand(episodes, 3, generator=generator)
        return real + 0.4 * torch.rand(episodes, 3, generator=generator), real, None
    real = torch.rand(episodes, *((takes,) if takes > 1 else ()), generator=generator)
    pred = (real.mean(1) if takes > 1 else real) + 0.4 * torch.randn(episodes, generator=generator)
    return pred, real, torch.randint(0, 6, (episodes,), generator=generator)


def _filled(mode, takes, batches):
    metric = TaskValidity(mode=mode, num_takes=takes, num_groups=6, episode_scores=True)
    for batch in batches:
        metric.update(*batch)
    return metric


@pytest.mark.parametrize(("mode", "takes"), CASES)
def test_statistic_of_summed_rows_is_the_score_of_those_episodes(mode, takes):
    g = torch.Generator().manual_seed(0)
    batches = [_outcomes(mode, takes, 8, g) for _ in range(3)]
    metric = _filled(mode, takes, batches)
    rows, statistic = metric.episode_statistics(), metric.interval_statistic()
    assert rows.shape == (24, metric.episode_columns())
    assert float(statistic.score(rows.sum(0))) == pytest.approx(float(metric.compute()), abs=1e-6)
    assert (statistic.reality is None) == (takes == 1 or mode == "decision")
    if statistic.reality is not None:
        assert float(statistic.reality(rows.sum(0))) == pytest.approx(float(metric.real_baseline()), abs=1e-6)
    # any subset of episodes: its rows, summed, score as a metric fed those episodes alone; batched over leading dims
    alone = float(_filled(mode, takes, batches[1:2]).compute())
    both = statistic.score(torch.stack([rows[8:16].sum(0), rows.sum(0)]))
    assert both.tolist() == pytest.approx([alone, float(metric.compute())], abs=1e-6)


@pytest.mark.parametrize(("mode", "takes"), CASES)
def test_interval_holds_the_score_and_repeats(mode, takes):
    metric = _filled(mode, takes, [_outcomes(mode, takes, 16, torch.Generator().manual_seed(1))])
    rows, statistic, score = metric.episode_statistics(), metric.interval_statistic(), float(metric.compute())
    low, high = bootstrap_interval(rows, statistic=statistic)
    assert low <= score <= high and low < high
    assert bootstrap_interval(rows.clone(), statistic=statistic) == (low, high)
    narrow, wide = (bootstrap_interval(rows, level=level, statistic=statistic) for level in (0.8, 0.99))
    assert wide[0] <= narrow[0] <= score <= narrow[1] <= wide[1] and narrow[1] - narrow[0] < wide[1] - wide[0]
    if (mode, takes) == ("agreement", 1):  # the default statistic reads such rows as (model, takes...): wrong
        assert bootstrap_interval(rows) != (low, high)


def test_bad_statistic_arguments_name_the_field():
    rows = torch.rand(8, 4)
    statistic = EpisodeStatistic(lambda sums: task_agreement_statistic(sums)[0])
    with pytest.raises(ValueError, match=r"`statistic` to have a `reality` function with reality=True but got None"):
        bootstrap_interval(rows, statistic=statistic, reality=True)
    with pytest.raises(ValueError, match=r"`episode_statistics` as per-episode rows \(n, k\) but got shape \(8,\)"):
        bootstrap_interval(rows[:, 0], statistic=statistic)
    with pytest.raises(ValueError, match=r"`statistic_fns` to map axis names to EpisodeStatistic but got .a.: func"):
        gate_intervals({"a": rows}, statistic_fns={"a": statistic.score})


def _judged_population(takes, generator):
    """Per-episode agreement rows of a large population, and the population's own score of its judge."""
    if takes == 1:
        real = torch.rand(POPULATION, generator=generator) < 0.4
    else:  # each episode's own success probability; R takes drawn from it
        chance = torch.distributions.Beta(torch.tensor(0.8), torch.tensor(1.2)).sample((POPULATION,))
        real = torch.rand(POPULATION, takes, generator=generator) < chance[:, None]
    truth = real.double().mean(1) > 0.5 if takes > 1 else real
    accuracy = torch.where(truth, 0.85, 0.8) if takes == 1 else torch.full((POPULATION,), 0.7)  # below reality's
    right = torch.rand(POPULATION, generator=generator) < accuracy
    metric = TaskValidity(num_takes=takes, episode_scores=True)
    metric.update(torch.where(right, truth, ~truth), real)
    return metric.episode_statistics(), metric.interval_statistic(), float(metric.compute())


@pytest.mark.parametrize("episodes", [16, 32])
def test_95_percent_intervals_of_informedness_cover_the_population_value(episodes):
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(episodes)
    rows, statistic, truth = _judged_population(1, g)
    probe_sets = rows[torch.randint(len(rows), (DRAWS, episodes), generator=g)]
    ends = batched_bootstrap_interval(probe_sets, level=0.95, num_resamples=1000, statistic=statistic)
    coverage = float(((ends[:, 0] <= truth) & (truth <= ends[:, 1])).double().mean())
    assert 0.90 <= coverage <= 0.99, coverage


def _task_probe_set(num_episodes=8):
    """The tiny world's probe set with a real task outcome: is the last reference frame bright?"""
    probe = make_probe_set(num_episodes=num_episodes)
    outcomes = _bright(probe.targets[:, 0])
    return ProbeSet(probe.context, probe.actions, probe.targets, outcomes=outcomes, seeds=probe.seeds)


def _bright(frames):
    return frames[:, -1].mean((1, 2, 3)) > 0.5


def _shows_interval(result):
    low, high = result.intervals["task_validity"]
    assert low <= result.scores["task_validity"] <= high
    line = next(line for line in str(result).splitlines() if line.lstrip().startswith("task_validity"))
    assert f"[{low:.3f}, {high:.3f}]" in line


def test_evaluate_gives_task_validity_an_interval_and_prints_it():
    probe = _task_probe_set(12)
    model = TinyWorldModel(start=0.6)
    first, second = evaluate(model, probe, task_fn=_bright), evaluate(model, probe, task_fn=_bright)
    _shows_interval(first)
    assert first.intervals["task_validity"] == second.intervals["task_validity"]
    assert "task_validity" not in first.real_baseline_intervals  # one take: reality is its own reference


def test_callback_check_gives_task_validity_an_interval(tmp_path):
    gate = SimulatorGateCallback(_task_probe_set(), batch_size=4, task_fn=_bright)
    trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel())
    _shows_interval(gate.history[-1])


def test_scorecard_sums_per_branch_rows_per_episode_in_episode_order():
    g = torch.Generator().manual_seed(4)
    preds = torch.rand(4, 2, 3, 3, 8, 8, generator=g)
    real = torch.rand(4, 2, generator=g) < 0.5  # per-branch outcomes: one judged row per (episode, branch)
    judged = torch.rand(4, 2, generator=g) < 0.5
    card = SimulatorScorecard(episode_scores=True)
    for order in (torch.tensor([3, 1]), torch.tensor([0, 2])):
        task = {"task_pred": judged[order].flatten(), "task_real": real[order].flatten()}
        card.update(preds[order], preds[order], episode_index=order, **task)
    rows = card.episode_statistics()["task_validity"]
    expected = TaskValidity(episode_scores=True)
    expected.update(judged.flatten(), real.flatten())
    assert torch.equal(rows, expected.episode_statistics().view(4, 2, 4).sum(1))
    with pytest.raises(ValueError, match=r"`task_real` to hold one row per episode.* for the 2 episode\(s\).* 3 row"):
        card.update(preds[:2], preds[:2], task_pred=judged[:3, 0], task_real=real[:3, 0])
