"""Baseline choice: the latest blessed model, never the candidate itself."""

from tfx.types import standard_artifacts

from components import baseline_resolver


def _model(artifact_id: int):
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(model_id: int, blessed: bool):
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _resolve(candidate_ids, model_ids, blessings):
    model, blessing = baseline_resolver.latest_blessed_other_model(
        set(candidate_ids), [_model(i) for i in model_ids], blessings
    )
    return (model.id if model else None), blessing


def test_no_blessed_model_means_no_baseline():
    assert _resolve([3], [1, 3], [_blessing(1, False)]) == (None, None)


def test_latest_blessed_model_is_the_baseline():
    blessings = [_blessing(1, True), _blessing(2, True), _blessing(4, False)]
    model_id, blessing = _resolve([5], [1, 2, 4, 5], blessings)
    assert model_id == 2
    assert blessing is blessings[1]


def test_the_candidate_is_never_its_own_baseline():
    blessings = [_blessing(1, True), _blessing(2, True)]
    assert _resolve([2], [1, 2], blessings)[0] == 1
    assert _resolve([1], [1], [_blessing(1, True)]) == (None, None)


def test_strategy_keeps_the_candidate_channel():
    strategy = baseline_resolver.LatestBlessedBaselineStrategy()
    candidate = _model(2)
    result = strategy.resolve_artifacts(
        None,
        {
            "candidate": [candidate],
            "model": [_model(1), candidate],
            "model_blessing": [_blessing(1, True), _blessing(2, True)],
        },
    )
    assert result["candidate"] == [candidate]
    assert [m.id for m in result["model"]] == [1]
