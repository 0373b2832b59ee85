"""ReleaseEvaluator: TFX's Evaluator, told when there is no release to compare with.

LatestRelease always outputs a Model (KFP has no way to pass "no artifact"),
empty before the first release. This executor drops such an empty baseline
before TFMA sees it, so the first release is judged by the absolute
threshold alone, exactly as TFX's Evaluator does without a baseline input.
Everything else is TFX's Evaluator unchanged.
"""

from typing import Any

from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from components.latest_release import has_release
from components.source_fingerprint import FingerprintDriver


class ReleaseEvaluatorExecutor(evaluator_executor.Executor):
    """Evaluates with the baseline only when LatestRelease found one."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        key = standard_component_specs.BASELINE_MODEL_KEY
        baselines = input_dict.get(key) or []
        if baselines and not all(has_release(baseline) for baseline in baselines):
            input_dict = {name: value for name, value in input_dict.items() if name != key}
        super().Do(input_dict, output_dict, exec_properties)


class ReleaseEvaluator(evaluator_component.Evaluator):
    """TFX's Evaluator with ReleaseEvaluatorExecutor (same inputs, outputs, config)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ReleaseEvaluatorExecutor)
    DRIVER_CLASS = FingerprintDriver
    SOURCE_MODULES = (__name__,)
