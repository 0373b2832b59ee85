"""Baseline for the Evaluator: the latest blessed model other than the candidate.

TFX's LatestBlessedModelStrategy returns the latest blessed model even when it
*is* the candidate (a rerun whose Trainer was cached). The Evaluator then
compares the model with itself, re-blesses it and the Pusher releases the same
model a second time under a new version. Excluding the candidate keeps a
rerun with nothing changed fully cached and releases nothing new, while a new
candidate is still compared with the latest release.
"""

from typing import Any

from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.types import standard_artifacts

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"


def latest_blessed_other_model(
    candidate_ids: set[int],
    models: list[types.Artifact],
    blessings: list[types.Artifact],
) -> tuple[types.Artifact | None, types.Artifact | None]:
    """Returns (model, blessing) of the newest blessed model not in candidate_ids."""
    blessing_by_model_id = {
        blessing.get_int_custom_property(
            evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY
        ): blessing
        for blessing in blessings
        if blessing.get_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1
    }
    for model in sorted(models, key=lambda artifact: artifact.id, reverse=True):
        if model.id in blessing_by_model_id and model.id not in candidate_ids:
            return model, blessing_by_model_id[model.id]
    return None, None


class LatestBlessedBaselineStrategy(resolver.ResolverStrategy):
    """Resolves the latest blessed Model (and its blessing), never the candidate.

    Inputs: `candidate` (the Trainer's model), `model` (all Models) and
    `model_blessing` (all ModelBlessings).
    """

    def resolve_artifacts(
        self, store: Any, input_dict: dict[str, list[types.Artifact]]
    ) -> dict[str, list[types.Artifact]] | None:
        candidate_ids = {artifact.id for artifact in input_dict.get(CANDIDATE_KEY, [])}
        model, blessing = latest_blessed_other_model(
            candidate_ids, input_dict.get(MODEL_KEY, []), input_dict.get(MODEL_BLESSING_KEY, [])
        )
        return {
            CANDIDATE_KEY: list(input_dict.get(CANDIDATE_KEY, [])),
            MODEL_KEY: [model] if model else [],
            MODEL_BLESSING_KEY: [blessing] if blessing else [],
        }


def make_baseline_resolver(
    candidate_model: types.BaseChannel, exclude_candidate: bool = True
) -> resolver.Resolver:
    """The Resolver node that feeds the Evaluator its baseline model.

    Args:
      candidate_model: The Trainer's model channel.
      exclude_candidate: True: LatestBlessedBaselineStrategy (never the
        candidate). False: TFX's LatestBlessedModelStrategy, the only kind the
        Kubeflow V2 compiler can translate into a server-side query; there the
        rerun-with-nothing-changed case is left to KFP's own caching.
    """
    models = {
        MODEL_KEY: types.Channel(type=standard_artifacts.Model),
        MODEL_BLESSING_KEY: types.Channel(type=standard_artifacts.ModelBlessing),
    }
    if exclude_candidate:
        node = resolver.Resolver(
            strategy_class=LatestBlessedBaselineStrategy,
            **{CANDIDATE_KEY: candidate_model},
            **models,
        )
    else:
        node = resolver.Resolver(strategy_class=LatestBlessedModelStrategy, **models)
    return node.with_id("latest_blessed_model_resolver")
