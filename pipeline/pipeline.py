"""`create_pipeline`: the MNIST TFX pipeline as one pure function.

Every path, threshold and hyper-parameter comes in as an argument; the
function reads no environment and runs nothing, so the local runner and the
Kubeflow runner build the very same pipeline.
"""

import tensorflow_model_analysis as tfma
from tfx.components import ExampleValidator, ImportExampleGen, StatisticsGen
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2, transform_pb2

from components.anomaly_gate import AnomalyGate
from components.code_keyed import CodeKeyedTrainer, CodeKeyedTransform
from components.curated_schema_gen import CuratedSchemaGen
from components.data_profile import DataProfile
from components.drift_check import DriftCheck
from components.error_gallery import ErrorGallery
from components.label_check import LabelCheck
from components.latest_release import LatestRelease, ServedModel
from components.mnist_example_gen import MnistExampleGen
from components.model_card import ModelCardGen
from components.release_evaluator import ReleaseEvaluator
from components.release_manifest import ReleaseManifest
from components.release_pusher import ReleasePusher
from components.serving_check import ServingCheck
from components.span_listing import SpanListing
from components.tflite_candidate import TFLiteCandidate
from contract import features
from pipeline.config import PipelineConfig, UserCode


def _serving_model_spec() -> tfma.ModelSpec:
    """The SavedModel as a client calls it, with the Transform signature for preprocessing."""
    return tfma.ModelSpec(
        signature_name=features.SIGNATURE_NAME,
        label_key=features.LABEL_KEY,
        preprocessing_function_names=[features.TRANSFORM_SIGNATURE],
    )


def make_eval_config(accuracy_threshold: float, baseline_tolerance: float) -> tfma.EvalConfig:
    """TFMA config: test accuracy must clear the bar and not fall below the baseline.

    Args:
      accuracy_threshold: Lowest test accuracy that may be blessed.
      baseline_tolerance: How much less accurate than the latest blessed model
        a candidate may be (a tiny value: "not worse").

    Returns:
      An EvalConfig over the raw test examples via the `serving_default`
      signature, with the `transform_features` signature for preprocessing,
      sliced overall and per digit, with a multi-class confusion matrix.
    """
    overall = tfma.SlicingSpec()
    per_digit = tfma.SlicingSpec(feature_keys=[features.LABEL_KEY])
    accuracy = tfma.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        # The gate applies to the overall slice only; per-digit accuracy is
        # reported, not gated (a few digits are always below the average).
        per_slice_thresholds=[
            tfma.PerSliceMetricThreshold(
                slicing_specs=[overall],
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(
                        lower_bound={"value": accuracy_threshold}
                    ),
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                        absolute={"value": -baseline_tolerance},
                    ),
                ),
            )
        ],
    )
    return tfma.EvalConfig(
        model_specs=[_serving_model_spec()],
        slicing_specs=[overall, per_digit],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            )
        ],
    )


def _accuracy_at_least(accuracy_threshold: float) -> list[tfma.MetricsSpec]:
    """Example count and accuracy, gated at an absolute bar (no baseline)."""
    return [
        tfma.MetricsSpec(
            metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(
                    class_name="SparseCategoricalAccuracy",
                    threshold=tfma.MetricThreshold(
                        value_threshold=tfma.GenericValueThreshold(
                            lower_bound={"value": accuracy_threshold}
                        )
                    ),
                ),
            ]
        )
    ]


def make_tflite_eval_config(accuracy_threshold: float) -> tfma.EvalConfig:
    """TFMA config for the TFLite model: the same bar on the same test split.

    The TFLite model takes the raw feature `image` (int64 pixels) as its input
    of that name and has the scaling inside, so TFMA feeds it the raw examples
    with no preprocessing function. No baseline: the release is gated on the
    SavedModel's comparison; this checks the converted model keeps its accuracy.
    """
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(model_type=tfma.TF_LITE, label_key=features.LABEL_KEY)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=_accuracy_at_least(accuracy_threshold),
    )


def make_span_eval_config(accuracy_threshold: float) -> tfma.EvalConfig:
    """TFMA config for the new-data test slice: the same model and signature, its own bar.

    No baseline comparison: the served model may not have seen these spans'
    kind of digits; the gate is "good enough on the newest data", MNIST's
    test split keeps the "not worse than released" rule.
    """
    return tfma.EvalConfig(
        model_specs=[_serving_model_spec()],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=_accuracy_at_least(accuracy_threshold),
    )


def _outputs_of(**wanted):
    """{name: component.outputs[key]} for the components that exist (spans are optional)."""
    return {
        name: component.outputs[key]
        for name, (component, key) in wanted.items()
        if component is not None
    }


def create_pipeline(
    pipeline_root: str,
    serving_model_dir: str,
    mnist_dir: str,
    tfds_data_dir: str,
    schema_file: str,
    user_code: UserCode,
    config: PipelineConfig,
    beam_pipeline_args: list[str] | None = None,
    metadata_connection_config=None,
    extra_examples_dir: str | None = None,
    spans_dir: str | None = None,
) -> tfx_pipeline.Pipeline:
    """Builds the MNIST pipeline: TFDS -> validated data -> model -> release.

    Args:
      pipeline_root: Root of all artifacts the components write.
      serving_model_dir: The releases: each goes to a numbered subdirectory,
        and the newest is the baseline a candidate may not fall below
        (local path or gs://).
      mnist_dir: Folder with the original MNIST archives (TFDS manual dir).
      tfds_data_dir: Where TFDS keeps its prepared data.
      schema_file: The curated schema (schemas/schema.pbtxt).
      user_code: Where `preprocessing_fn` and `run_fn` come from (module
        files locally, import paths in a container image).
      config: Thresholds, data split and trainer hyper-parameters.
      beam_pipeline_args: Beam options for the Beam-powered components;
        defaults to config.beam_pipeline_args.
      metadata_connection_config: ML Metadata connection (the runner's choice).
      extra_examples_dir: Optional folder of tf.Example TFRecord files (GZIP
        if named *.gz, else plain) in the feature contract, added to `train`.
      spans_dir: Optional folder of `span-<N>/` folders of newly labelled
        digits (local path or object store): the run trains on MNIST plus the
        window of spans (config.spans), gated for drift and wrong labels, and
        judged on their held-out test slices as well (docs/spans.md).

    Returns:
      The TFX pipeline, ready for any orchestrator.
    """
    components = []
    extra_examples = None
    if extra_examples_dir:
        # Imports newly labelled digits; the door through which bad data can arrive.
        import_example_gen = ImportExampleGen(
            input_base=extra_examples_dir,
            input_config=example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name=features.SPLIT_TRAIN, pattern="*")]
            ),
        ).with_id("ExtraExampleGen")
        components.append(import_example_gen)
        extra_examples = import_example_gen.outputs["examples"]

    span_listing = None
    if spans_dir:
        # Lists the spans folder inside a task of its own (no resolver, no driver on
        # KFP): its output is a parameter, so the span reader's cache key sees a new span.
        span_listing = SpanListing(
            spans_dir=spans_dir,
            span_window=config.spans.span_window,
            serving_model_dir=serving_model_dir,
        )
        components.append(span_listing)
    span_kwargs = {}
    if span_listing is not None:
        span_kwargs = {
            "span_listing": span_listing.outputs["listing"].future()[0].value,
            "span_eval_fraction": config.spans.eval_fraction,
            "span_test_fraction": config.spans.test_fraction,
        }

    # Exports MNIST from the real TFDS builder (plus the window of spans) as tf.Examples.
    example_gen = MnistExampleGen(
        extra_examples=extra_examples,
        image_feature=features.IMAGE_KEY,
        label_feature=features.LABEL_KEY,
        mnist_dir=mnist_dir,
        tfds_data_dir=tfds_data_dir,
        eval_holdout_size=config.data.eval_holdout_size,
        split_seed=config.data.split_seed,
        train_limit=config.data.train_limit,
        test_limit=config.data.test_limit,
        allow_download=int(config.data.allow_download),
        **span_kwargs,
    )

    # Imports the curated, checked-in schema instead of inferring one from the data
    # (keyed on its content: an edited schema is imported again).
    schema_gen = CuratedSchemaGen(schema_file=schema_file).with_id("ImportSchemaGen")

    # Computes per-split statistics (labels counted per digit, as the schema says):
    # the input to validation and drift checks, and a record of the data.
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]
    )

    # Checks the statistics against the curated schema and records any anomalies.
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )

    # Scales pixels to [0, 1] in a graph that training and serving both use.
    transform = CodeKeyedTransform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=user_code.transform_module_file,
        preprocessing_fn=user_code.preprocessing_fn,
        splits_config=transform_pb2.SplitsConfig(
            analyze=[features.SPLIT_TRAIN], transform=[features.SPLIT_TRAIN, features.SPLIT_EVAL]
        ),
        # StatisticsGen already describes the data; Transform's own statistics
        # passes would only cost time.
        disable_statistics=True,
    ).with_id("Transform")

    span_components = []
    drift = label_check = span_evaluator = None
    if span_listing is not None:
        # Measures how far the window drifted from the served model's training data.
        drift = DriftCheck(
            statistics=statistics_gen.outputs["statistics"],
            schema=schema_gen.outputs["schema"],
            examples=example_gen.outputs["examples"],
            serving_model_dir=serving_model_dir,
            image_js_threshold=config.spans.image_js_threshold,
            label_linf_threshold=config.spans.label_linf_threshold,
            warn_only=int(config.spans.drift_warn_only),
        )
        # Lets the served model read each span: too many disagreements mark it suspect.
        label_check = LabelCheck(
            examples=example_gen.outputs["examples"],
            serving_model_dir=serving_model_dir,
            error_margin=config.spans.label_error_margin,
            max_p_value=config.spans.label_max_p_value,
        )
        span_components += [drift, label_check]

    # Stops the run here on schema anomalies, drift or suspect labels: no training on bad data.
    anomaly_gate = AnomalyGate(
        anomalies=example_validator.outputs["anomalies"],
        **_outputs_of(drift=(drift, "drift"), label_check=(label_check, "label_check")),
    )
    transform.add_upstream_node(anomaly_gate)

    warm_start = None
    if config.warm_start:
        # The served release (none at first), as the Trainer's base_model: a warm
        # start from its weights. An ordinary task, so open-source KFP runs it.
        warm_start = ServedModel(serving_model_dir=serving_model_dir).with_id("WarmStartModel")
        components.append(warm_start)

    # Trains the dense Keras model, early-stopping on the eval split.
    trainer = CodeKeyedTrainer(
        module_file=user_code.trainer_module_file,
        run_fn=user_code.run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=[features.SPLIT_TRAIN]),
        eval_args=trainer_pb2.EvalArgs(splits=[features.SPLIT_EVAL]),
        custom_config=config.trainer.to_custom_config(),
        base_model=warm_start.outputs["baseline_model"] if warm_start is not None else None,
    ).with_id("Trainer")

    # Reads the newest release other than this candidate from the serving
    # directory: the baseline a new model may not fall below (none at first).
    latest_release = LatestRelease(
        model=trainer.outputs["model"], serving_model_dir=serving_model_dir
    )

    # Evaluates on the untouched test split; blesses only above the bar and the release.
    evaluator = ReleaseEvaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[features.SPLIT_TEST],
        model=trainer.outputs["model"],
        baseline_model=latest_release.outputs["baseline_model"],
        eval_config=make_eval_config(config.accuracy_threshold, config.baseline_tolerance),
    ).with_id("Evaluator")

    if span_listing is not None:
        # Judges the candidate on the window's held-out new-data test slice.
        span_evaluator = ReleaseEvaluator(
            examples=example_gen.outputs["examples"],
            example_splits=[features.SPLIT_SPAN_TEST],
            model=trainer.outputs["model"],
            eval_config=make_span_eval_config(config.spans.span_accuracy_threshold),
        ).with_id("SpanEvaluator")
        span_components.append(span_evaluator)

    # Hands the Trainer's TFLite model to TFMA as a model of its own.
    tflite_candidate = TFLiteCandidate(model=trainer.outputs["model"])

    # Judges the TFLite model on the same test split against the same bar.
    tflite_evaluator = ReleaseEvaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[features.SPLIT_TEST],
        model=tflite_candidate.outputs["tflite_model"],
        eval_config=make_tflite_eval_config(config.accuracy_threshold),
    ).with_id("TFLiteEvaluator")

    # Serves the candidate as a model server would, in a fresh process: canary
    # and malformed requests, latency; blesses it and adds a warmup file.
    serving_check = ServingCheck(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        evaluation=evaluator.outputs["evaluation"],
    )

    # Runs the candidate's predict signature over the test split: the report's error gallery.
    error_gallery = ErrorGallery(
        model=trainer.outputs["model"], examples=example_gen.outputs["examples"]
    )

    # Profiles every split for the report; needs only the examples, so a stopped run has it too.
    data_profile = DataProfile(examples=example_gen.outputs["examples"])

    # Drafts what the release will record: metrics, gates, baseline, data, lineage.
    release_manifest = ReleaseManifest(
        model=trainer.outputs["model"],
        evaluation=evaluator.outputs["evaluation"],
        examples=example_gen.outputs["examples"],
        baseline_model=latest_release.outputs["baseline_model"],
        infra_blessing=serving_check.outputs["blessing"],
        tflite_evaluation=tflite_evaluator.outputs["evaluation"],
        statistics=statistics_gen.outputs["statistics"],
        **_outputs_of(
            drift=(drift, "drift"),
            label_check=(label_check, "label_check"),
            span_evaluation=(span_evaluator, "evaluation"),
        ),
    )

    # Renders the model card from that draft, for the release to carry.
    model_card = ModelCardGen(manifest=release_manifest.outputs["manifest"])

    # TFX's Pusher contract, releasing exactly once: what the Evaluators and the
    # serving check blessed (the serving check's copy, with its warmup file),
    # whole (staged, then renamed), not again if the newest release holds it.
    pusher = ReleasePusher(
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_check.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
        tflite_blessing=tflite_evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        tflite_evaluation=tflite_evaluator.outputs["evaluation"],
        manifest=release_manifest.outputs["manifest"],
        model_card=model_card.outputs["model_card"],
        **_outputs_of(
            span_blessing=(span_evaluator, "blessing"),
            span_evaluation=(span_evaluator, "evaluation"),
        ),
    ).with_id("Pusher")

    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            *components,
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            anomaly_gate,
            *span_components,
            transform,
            trainer,
            latest_release,
            evaluator,
            tflite_candidate,
            tflite_evaluator,
            serving_check,
            error_gallery,
            data_profile,
            release_manifest,
            model_card,
            pusher,
        ],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(
            config.beam_pipeline_args if beam_pipeline_args is None else beam_pipeline_args
        ),
    )
