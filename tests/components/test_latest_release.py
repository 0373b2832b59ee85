"""LatestRelease (baseline from the serving dir) and ReleaseEvaluator's use of it."""

import os
import shutil

import pytest
from tfx.components.evaluator import executor as evaluator_executor
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import latest_release, release_evaluator
from contract import releases
from tests.components.fake_saved_model import write_fake_saved_model


def candidate_model(tmp_path, variables=b"candidate") -> standard_artifacts.Model:
    """A Trainer-shaped Model artifact: the SavedModel under `<uri>/Format-Serving`."""
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "trainer" / "model")
    write_fake_saved_model(path_utils.serving_model_path(model.uri), variables)
    return model


def candidate_dir(model: standard_artifacts.Model) -> str:
    return path_utils.serving_model_path(model.uri)


@pytest.fixture
def serving(tmp_path):
    """A serving dir with releases 9 (old weights) and 10 (new weights)."""
    serving_dir = tmp_path / "serving"
    write_fake_saved_model(serving_dir / "9", b"old")
    write_fake_saved_model(serving_dir / "10", b"new")
    return str(serving_dir)


def test_baseline_is_none_without_releases(tmp_path):
    model = candidate_model(tmp_path)
    assert latest_release.baseline_release(str(tmp_path / "serving"), candidate_dir(model)) is None
    assert latest_release.baseline_release(str(tmp_path / "serving"), None) is None


def test_baseline_is_the_newest_release_when_the_candidate_differs(tmp_path, serving):
    model = candidate_model(tmp_path, b"candidate")
    baseline, fingerprint = latest_release.baseline_release(serving, candidate_dir(model))
    assert baseline == releases.Release(10, os.path.join(serving, "10"))
    assert fingerprint == releases.model_fingerprint(os.path.join(serving, "10"))


def test_baseline_skips_the_newest_release_when_it_holds_the_candidate(tmp_path, serving):
    model = candidate_model(tmp_path, b"new")  # the model released as version 10
    baseline, fingerprint = latest_release.baseline_release(serving, candidate_dir(model))
    assert baseline.version == 9
    assert fingerprint == releases.model_fingerprint(os.path.join(serving, "9"))


def test_baseline_is_none_when_the_only_release_holds_the_candidate(tmp_path):
    serving_dir = write_fake_saved_model(tmp_path / "serving" / "3", b"same")
    model = candidate_model(tmp_path, b"same")
    assert (
        latest_release.baseline_release(os.path.dirname(serving_dir), candidate_dir(model)) is None
    )


def test_release_state_is_none_or_version_and_fingerprint(tmp_path, serving):
    model = candidate_model(tmp_path, b"candidate")
    assert latest_release.release_state(str(tmp_path / "empty"), candidate_dir(model)) == "none"
    expected = f"10:{releases.model_fingerprint(os.path.join(serving, '10'))}"
    assert latest_release.release_state(serving, candidate_dir(model)) == expected
    own = candidate_model(tmp_path / "own", b"new")
    expected_own = f"9:{releases.model_fingerprint(os.path.join(serving, '9'))}"
    assert latest_release.release_state(serving, candidate_dir(own)) == expected_own


def run_executor(tmp_path, serving_dir, input_dict):
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / "latest_release" / "baseline_model")
    latest_release.LatestReleaseExecutor().Do(
        input_dict, {"baseline_model": [baseline]}, {"serving_model_dir": serving_dir}
    )
    return baseline


def test_executor_copies_the_newest_release_into_format_serving(tmp_path, serving):
    model = candidate_model(tmp_path, b"candidate")
    baseline = run_executor(tmp_path, serving, {"model": [model]})

    copied = os.path.join(baseline.uri, "Format-Serving")
    assert copied == path_utils.serving_model_path(baseline.uri)
    fingerprint = releases.model_fingerprint(os.path.join(serving, "10"))
    assert releases.model_fingerprint(copied) == fingerprint
    assert baseline.get_int_custom_property("has_release") == 1
    assert latest_release.has_release(baseline)
    assert baseline.get_string_custom_property("release_version") == "10"
    assert baseline.get_string_custom_property("release_dir") == os.path.join(serving, "10")
    assert baseline.get_string_custom_property("model_fingerprint") == fingerprint


def test_executor_never_hands_the_candidate_back_as_its_own_baseline(tmp_path, serving):
    model = candidate_model(tmp_path, b"new")
    baseline = run_executor(tmp_path, serving, {"model": [model]})
    assert baseline.get_string_custom_property("release_version") == "9"
    copied = path_utils.serving_model_path(baseline.uri)
    assert releases.model_fingerprint(copied) == releases.model_fingerprint(
        os.path.join(serving, "9")
    )


def test_executor_without_a_candidate_input_takes_the_newest_release(tmp_path, serving):
    baseline = run_executor(tmp_path, serving, {})
    assert baseline.get_string_custom_property("release_version") == "10"


def test_executor_without_a_release_marks_the_model_empty(tmp_path):
    model = candidate_model(tmp_path)
    baseline = run_executor(tmp_path, str(tmp_path / "serving"), {"model": [model]})
    assert baseline.get_int_custom_property("has_release") == 0
    assert not latest_release.has_release(baseline)
    assert not os.path.exists(os.path.join(baseline.uri, "Format-Serving"))
    assert baseline.get_string_custom_property("release_version") == ""


def run_driver(serving_dir, model, **exec_properties):
    node = pipeline_pb2.PipelineNode()
    node.node_info.type.name = "components.latest_release.LatestRelease"
    execution_info = data_types.ExecutionInfo(
        input_dict={"model": [model]},
        exec_properties={"serving_model_dir": serving_dir, **exec_properties},
        pipeline_run_id="run-1",
        pipeline_node=node,
    )
    return latest_release.LatestReleaseDriver(metadata_handle=None).run(execution_info)


def test_driver_puts_the_release_state_into_the_exec_properties(tmp_path, serving):
    model = candidate_model(tmp_path, b"candidate")
    output = run_driver(serving, model, release_state=None)
    expected = latest_release.release_state(serving, candidate_dir(model))
    assert expected.startswith("10:")
    assert output.exec_properties["release_state"].string_value == expected
    assert output.exec_properties["serving_model_dir"].string_value == serving


def test_driver_state_changes_with_a_new_release_and_not_with_its_own(tmp_path, serving):
    model = candidate_model(tmp_path, b"candidate")
    before = run_driver(serving, model).exec_properties["release_state"].string_value
    shutil.copytree(candidate_dir(model), os.path.join(serving, "11"))  # the candidate released
    after_own = run_driver(serving, model).exec_properties["release_state"].string_value
    write_fake_saved_model(os.path.join(serving, "12"), b"another model")
    after_other = run_driver(serving, model).exec_properties["release_state"].string_value
    assert after_own == before  # a rerun after its own release stays a cache hit
    assert after_other.startswith("12:")


def test_driver_state_is_none_before_the_first_release(tmp_path):
    output = run_driver(str(tmp_path / "serving"), candidate_model(tmp_path))
    assert output.exec_properties["release_state"].string_value == "none"


@pytest.mark.parametrize(("has_release", "keeps_baseline"), [(0, False), (1, True)])
def test_release_evaluator_with_fake_parent_drops_an_empty_baseline(
    monkeypatch, has_release, keeps_baseline
):
    seen = {}

    def fake_evaluator_do(self, input_dict, output_dict, exec_properties):
        seen.update(input_dict=input_dict, output_dict=output_dict, props=exec_properties)

    monkeypatch.setattr(evaluator_executor.Executor, "Do", fake_evaluator_do)
    model, baseline = standard_artifacts.Model(), standard_artifacts.Model()
    baseline.set_int_custom_property("has_release", has_release)
    examples = standard_artifacts.Examples()
    evaluation = standard_artifacts.ModelEvaluation()
    input_dict = {"examples": [examples], "model": [model], "baseline_model": [baseline]}
    exec_properties = {"eval_config": "{}"}

    release_evaluator.ReleaseEvaluatorExecutor().Do(
        input_dict, {"evaluation": [evaluation]}, exec_properties
    )

    assert ("baseline_model" in seen["input_dict"]) is keeps_baseline
    assert seen["input_dict"]["model"] == [model]
    assert seen["input_dict"]["examples"] == [examples]
    assert seen["output_dict"] == {"evaluation": [evaluation]}
    assert seen["props"] is exec_properties
    assert "baseline_model" in input_dict  # the caller's dict is left alone


def test_release_evaluator_with_fake_parent_passes_inputs_without_baseline(monkeypatch):
    seen = {}
    monkeypatch.setattr(
        evaluator_executor.Executor,
        "Do",
        lambda self, input_dict, output_dict, exec_properties: seen.update(inputs=input_dict),
    )
    model = standard_artifacts.Model()
    release_evaluator.ReleaseEvaluatorExecutor().Do({"model": [model]}, {}, {})
    assert seen["inputs"] == {"model": [model]}


def run_served_model_driver(serving_dir):
    node = pipeline_pb2.PipelineNode()
    node.node_info.type.name = "components.latest_release.ServedModel"
    execution_info = data_types.ExecutionInfo(
        input_dict={},
        exec_properties={"serving_model_dir": serving_dir},
        pipeline_run_id="run-1",
        pipeline_node=node,
    )
    output = latest_release.ServedModelDriver(metadata_handle=None).run(execution_info)
    return output.exec_properties["release_state"].string_value


def test_served_model_state_is_the_models_fingerprint_so_a_rollback_keeps_it(tmp_path, serving):
    before = run_served_model_driver(serving)
    assert before == releases.release_fingerprint(releases.newest_release(serving))
    # A rollback: release 10's model again, as version 11. The same warm start.
    shutil.copytree(os.path.join(serving, "10"), os.path.join(serving, "11"))
    assert run_served_model_driver(serving) == before
    write_fake_saved_model(os.path.join(serving, "12"), b"another model")
    assert run_served_model_driver(serving) not in (before, "none")
    assert run_served_model_driver(str(tmp_path / "no-serving")) == "none"


def test_served_model_takes_the_newest_release_with_no_candidate(tmp_path, serving):
    component = latest_release.ServedModel(serving_model_dir=serving)
    assert "model" not in component.inputs
    assert component.exec_properties["serving_model_dir"] == serving
    assert component.driver_class is latest_release.ServedModelDriver
