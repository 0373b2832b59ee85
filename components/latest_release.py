"""LatestRelease: the newest release other than the candidate, as the Evaluator's baseline.

"Not worse than the model released now" has to mean the model a server
serves now: the newest version in the serving directory. TFX's resolver
nodes answer a different question (the newest *blessed* model in ML
Metadata), hand a cached candidate back as its own baseline, and compile to
resolver tasks that the open-source KFP backend cannot run. This is a
regular component instead, so it compiles to an ordinary container task.

The candidate itself is never its own baseline: when the newest release
holds the candidate (same fingerprint: a rerun after that model was
released), the release before it is the baseline. It copies that release
into its output Model (`Format-Serving/`, where
the Evaluator looks) and records `has_release`, `release_version`,
`release_dir` and `model_fingerprint`. Before the first release the Model is
empty with `has_release = 0`, and ReleaseEvaluator judges the candidate by
the absolute threshold alone.

Caching: the component reads no input artifact, so TFX's cache key would
never change. Its driver puts the newest release's version and fingerprint
into the `release_state` exec property before the cache look-up: an
unchanged baseline is a cache hit (so a rerun with nothing changed stays
fully cached, even after its own model was released), a new release of
another model makes it run again. The Kubeflow compile turns
caching off for this one task instead (KFP runs no custom drivers).

ServedModel is the same component without a candidate: the newest release,
the served model, as the Trainer's `base_model` for a warm start
(`--warm-start`). Its cache key is the served model's fingerprint alone, so
a rollback to the model a warm start already began from changes nothing.
"""

from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.orchestration.portable import data_types
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components.source_fingerprint import FingerprintDriver
from contract import releases

SERVING_MODEL_DIR_KEY = "serving_model_dir"
CANDIDATE_KEY = "model"
RELEASE_STATE_KEY = "release_state"
BASELINE_MODEL_KEY = "baseline_model"
HAS_RELEASE_KEY = "has_release"
NO_RELEASE = "none"


def baseline_release(
    serving_model_dir: str, candidate_model_dir: str | None
) -> tuple[releases.Release, str] | None:
    """The newest release that does not hold the candidate, with its fingerprint."""
    candidate = releases.model_fingerprint(candidate_model_dir) if candidate_model_dir else None
    for newest in reversed(releases.list_releases(serving_model_dir)):
        fingerprint = releases.release_fingerprint(newest)
        if fingerprint != candidate:
            return newest, fingerprint
    return None


def _candidate_dir(input_dict: dict[str, list[types.Artifact]]) -> str | None:
    candidates = input_dict.get(CANDIDATE_KEY) or []
    return path_utils.serving_model_path(candidates[0].uri) if candidates else None


def release_state(serving_model_dir: str, candidate_model_dir: str | None) -> str:
    """`<version>:<fingerprint>` of the baseline release, or "none"."""
    found = baseline_release(serving_model_dir, candidate_model_dir)
    if found is None:
        return NO_RELEASE
    baseline, fingerprint = found
    return f"{baseline.version}:{fingerprint}"


def has_release(baseline_model: types.Artifact) -> bool:
    """True if LatestRelease found a release (the Model holds a SavedModel)."""
    return baseline_model.get_int_custom_property(HAS_RELEASE_KEY) == 1


class LatestReleaseSpec(ComponentSpec):
    """Reads a serving directory; outputs its newest release as a Model."""

    PARAMETERS = {
        SERVING_MODEL_DIR_KEY: ExecutionParameter(type=str),
        RELEASE_STATE_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {CANDIDATE_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True)}
    OUTPUTS = {BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class LatestReleaseDriver(FingerprintDriver):
    """Adds the baseline release's state (and the code's fingerprint) to the cache key."""

    def fingerprints(
        self, component_class: type, execution_info: data_types.ExecutionInfo
    ) -> dict[str, Any]:
        found = super().fingerprints(component_class, execution_info)
        found[RELEASE_STATE_KEY] = release_state(
            execution_info.exec_properties[SERVING_MODEL_DIR_KEY],
            _candidate_dir(execution_info.input_dict),
        )
        return found


class LatestReleaseExecutor(base_executor.BaseExecutor):
    """Copies the newest release into the output Model, or marks it empty."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        baseline = artifact_utils.get_single_instance(output_dict[BASELINE_MODEL_KEY])
        found = baseline_release(exec_properties[SERVING_MODEL_DIR_KEY], _candidate_dir(input_dict))
        if found is None:
            baseline.set_int_custom_property(HAS_RELEASE_KEY, 0)
            return
        released, fingerprint = found
        io_utils.copy_dir(released.path, path_utils.serving_model_path(baseline.uri))
        baseline.set_int_custom_property(HAS_RELEASE_KEY, 1)
        baseline.set_string_custom_property("release_version", str(released.version))
        baseline.set_string_custom_property("release_dir", released.path)
        baseline.set_string_custom_property("model_fingerprint", fingerprint)


class LatestRelease(base_component.BaseComponent):
    """The newest release in `serving_model_dir` (local path or gs://) that is not `model`."""

    SPEC_CLASS = LatestReleaseSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(LatestReleaseExecutor)
    DRIVER_CLASS = LatestReleaseDriver
    SOURCE_MODULES = (__name__,)

    def __init__(self, model: types.BaseChannel | None, serving_model_dir: str):
        super().__init__(
            spec=LatestReleaseSpec(
                model=model,
                serving_model_dir=serving_model_dir,
                baseline_model=types.Channel(type=standard_artifacts.Model),
            )
        )


class ServedModelDriver(LatestReleaseDriver):
    """Keys the cache on the served model's fingerprint alone, not its version.

    A rollback releases an earlier model again under a new version: a warm
    start from the same weights is the same warm start (cached, and so is a
    Trainer whose other inputs did not change).
    """

    def fingerprints(
        self, component_class: type, execution_info: data_types.ExecutionInfo
    ) -> dict[str, Any]:
        found = super().fingerprints(component_class, execution_info)
        found[RELEASE_STATE_KEY] = found[RELEASE_STATE_KEY].partition(":")[2] or NO_RELEASE
        return found


class ServedModel(LatestRelease):
    """The served release's model (the newest release), as a warm start's base_model."""

    DRIVER_CLASS = ServedModelDriver

    def __init__(self, serving_model_dir: str):
        super().__init__(model=None, serving_model_dir=serving_model_dir)
