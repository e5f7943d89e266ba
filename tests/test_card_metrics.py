"""The metrics in the shipped cards are what `zoo eval` measures (docs/metrics.md says so):
one model per task, recomputed from the shipped weights."""

import json

import pytest

from conftest import DATA, needs_data, zoo_cli


def evaluate(model, *extra):
    result = zoo_cli("eval", model, "--data", DATA, "--json", *extra)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["card"], f"{model} ships no card metrics"
    return report["metrics"], report["card"]


@needs_data
@pytest.mark.parametrize("model", ["cnn", "ngram", "dcgan", "cyclegan"])
def test_card_metrics_are_reproduced(model):
    measured, card = evaluate(model)
    for metric, recorded in card.items():
        assert metric in measured, f"{model}: the card's {metric} is not measured by `zoo eval`"
        assert measured[metric] == pytest.approx(recorded, rel=2e-3, abs=1e-4), (model, metric)


@needs_data
def test_policy_card_bounds_a_short_evaluation():
    # The card scores reset seeds 0..99; seeds 0..4 are among them, so each return lies within the card's range.
    measured, card = evaluate("cartpole", "--episodes", "5")
    assert measured["episodes"] == 5
    assert measured["min_return"] >= card["min_return"] and measured["mean_return"] >= card["min_return"]
