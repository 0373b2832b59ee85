"""Trainer module: the dense Keras MNIST model, its training loop and signatures.

`run_fn` is the entry point TFX calls; it stays short and delegates to the
typed helpers below, which unit tests call directly.
"""

import json
import logging
import math
import os
import time
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from contract import features, files, releases, tfx_internals
from pipeline.config import TrainerConfig

PROGRESS_LOGGER = "mnist.training"
"""Per-epoch records go to this logger with a `training_epoch` dict attached,
so a console can show progress without parsing log text."""
_READ_BATCH_SIZE = 1024
_IMAGE_XF = features.transformed_name(features.IMAGE_KEY)
_LABEL_XF = features.transformed_name(features.LABEL_KEY)


def _check_legacy_keras() -> None:
    """TFX 1.16 saves models with tf-keras; Keras 3 cannot (`save_format` is gone)."""
    if not tf.keras.__name__.startswith("tf_keras"):
        raise RuntimeError(
            "tf.keras is Keras 3, but TFX 1.16 needs tf-keras. Set "
            "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (the project's "
            "entry points do this; import them before tensorflow)."
        )


def input_fn(
    file_pattern: list[str],
    data_accessor: DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    max_shift: float = 0.0,
) -> tf.data.Dataset:
    """Reads transformed examples once, caches them, then batches per epoch.

    Args:
      file_pattern: Transformed example files of one split.
      data_accessor: TFX's accessor that turns the files into a tf.data source.
      tf_transform_output: The Transform output (for the transformed schema).
      batch_size: Training batch size.
      shuffle_buffer: Shuffle buffer size; 0 disables shuffling (eval).
      seed: Shuffle and augmentation seed, for repeatable training.
      max_shift: Random shift augmentation, as a fraction of the image; 0
        disables it (eval).

    Returns:
      A finite dataset of ({"image_xf": [B, 784]}, label [B, 1]) batches.
    """
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=_READ_BATCH_SIZE, num_epochs=1, shuffle=False, label_key=_LABEL_XF
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    dataset = dataset.unbatch().cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if max_shift:
        dataset = dataset.map(
            make_shift_augmentation(max_shift, seed), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_shift_augmentation(max_shift: float, seed: int | None = None):
    """Returns a batch map that moves each digit by up to max_shift of its size.

    Training-only augmentation (never in Transform, so serving sees the digit
    as sent). Small random shifts are what lets the small dense model clear
    the release gate reliably: it cannot learn translation invariance from
    centred digits alone (benchmarks/README.md has the figures).
    """
    shift = tf.keras.layers.RandomTranslation(
        max_shift, max_shift, fill_mode="constant", fill_value=0.0, seed=seed
    )

    @tf.autograph.experimental.do_not_convert
    def augment(batch: dict[str, tf.Tensor], labels: tf.Tensor):
        images = tf.reshape(batch[_IMAGE_XF], [-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1])
        moved = shift(images, training=True)
        return {**batch, _IMAGE_XF: tf.reshape(moved, [-1, features.NUM_PIXELS])}, labels

    return augment


def build_keras_model(
    hidden_units: tuple[int, ...], learning_rate: float, dropout_rate: float = 0.0
) -> tf.keras.Model:
    """Dense MNIST classifier: Dense(relu) hidden layers -> Dense(10, softmax).

    Args:
      hidden_units: Width of each hidden layer, e.g. (50, 50).
      learning_rate: Initial Adam learning rate.
      dropout_rate: Dropout after each hidden layer while training; 0 = none.

    Returns:
      A compiled model taking {"image_xf": float32 [B, 784]} and returning
      class probabilities [B, 10].
    """
    image = tf.keras.Input(shape=(features.NUM_PIXELS,), name=_IMAGE_XF)
    hidden = image
    for index, units in enumerate(hidden_units):
        hidden = tf.keras.layers.Dense(units, activation="relu", name=f"hidden_{index}")(hidden)
        if dropout_rate:
            hidden = tf.keras.layers.Dropout(dropout_rate, name=f"dropout_{index}")(hidden)
    probabilities = tf.keras.layers.Dense(
        features.NUM_CLASSES, activation="softmax", name="probabilities"
    )(hidden)
    model = tf.keras.Model(inputs={_IMAGE_XF: image}, outputs=probabilities)
    skip_autograph_of_steps(model)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def skip_autograph_of_steps(model: tf.keras.Model) -> None:
    """Traces the model's train and test steps without AutoGraph's source conversion.

    The first `fit` in a process spent about 11 s converting Keras's own
    train/test step code (loss, metrics, optimizer) with AutoGraph, whose
    Python control flow depends only on Python values, so plain tracing gives
    the same graph; with this the first fit takes about 1 s
    (benchmarks/README.md). Every pipeline run pays that first fit once.
    """
    tfx_internals.skip_autograph_of_steps(model)


class EpochLogger(tf.keras.callbacks.Callback):
    """Logs each epoch's figures, as text and as a `training_epoch` record.

    The record (epoch, max_epochs, loss, accuracy, eval_loss, eval_accuracy,
    learning_rate, seconds) reaches the local runner's progress console
    through Python logging; on Kubeflow it is an ordinary log line.
    """

    def __init__(self, max_epochs: int):
        super().__init__()
        self.max_epochs = max_epochs
        self.learning_rates: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        learning_rate = float(tf.keras.backend.get_value(self.model.optimizer.learning_rate))
        self.learning_rates.append(learning_rate)
        record = {
            "epoch": epoch + 1,
            "max_epochs": self.max_epochs,
            "loss": float(logs.get("loss", float("nan"))),
            "accuracy": float(logs.get("accuracy", float("nan"))),
            "eval_loss": float(logs.get("val_loss", float("nan"))),
            "eval_accuracy": float(logs.get("val_accuracy", float("nan"))),
            "learning_rate": learning_rate,
            "seconds": time.monotonic() - self._started,
        }
        logging.getLogger(PROGRESS_LOGGER).info(
            "epoch %d/%d: loss=%.4f accuracy=%.4f eval_loss=%.4f eval_accuracy=%.4f lr=%.2e",
            record["epoch"],
            self.max_epochs,
            record["loss"],
            record["accuracy"],
            record["eval_loss"],
            record["eval_accuracy"],
            learning_rate,
            extra={"training_epoch": record},
        )


def cosine_learning_rate(config: TrainerConfig, epoch: int) -> float:
    """Linear warm-up to config.learning_rate, then cosine decay to min_learning_rate.

    Args:
      config: learning_rate, min_learning_rate, warmup_epochs, max_epochs.
      epoch: 0-based epoch index.
    """
    if epoch < config.warmup_epochs:
        return config.learning_rate * (epoch + 1) / (config.warmup_epochs + 1)
    decay_epochs = max(1, config.max_epochs - config.warmup_epochs - 1)
    progress = min(1.0, (epoch - config.warmup_epochs) / decay_epochs)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


def learning_rate_callback(config: TrainerConfig) -> tf.keras.callbacks.Callback:
    """The LR schedule config.lr_schedule names ("plateau" or "cosine")."""
    if config.lr_schedule == "cosine":
        return tf.keras.callbacks.LearningRateScheduler(
            lambda epoch: cosine_learning_rate(config, epoch)
        )
    if config.lr_schedule == "plateau":
        return tf.keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=config.lr_plateau_factor,
            patience=config.lr_plateau_patience,
            min_lr=config.min_learning_rate,
        )
    raise ValueError(f"lr_schedule {config.lr_schedule!r}: expected 'plateau' or 'cosine'")


def training_callbacks(config: TrainerConfig, log_dir: str) -> list[tf.keras.callbacks.Callback]:
    """Early stopping on eval loss (best weights restored), LR schedule, logs."""
    return [
        tf.keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=config.early_stopping_patience,
            restore_best_weights=True,
        ),
        learning_rate_callback(config),
        tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"),
        EpochLogger(config.max_epochs),
    ]


def make_serving_signatures(
    model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput
) -> dict[str, Any]:
    """Signatures on serialized tf.Examples, with the Transform graph inside.

    Returns:
      `serving_default`: raw examples (no label) -> {"probabilities": [B, 10]};
      `predict`: raw examples -> {"probabilities", "classes" (int64 [B])};
      `transform_features`: raw examples -> transformed features, for TFMA;
      `pixels`: raw pixels int64 [B, 784] -> {"probabilities"}, the graph
        the TFLite model is converted from (no tf.Example parsing in it).
    """
    model.tft_layer = tf_transform_output.transform_features_layer()

    def probabilities_of(raw_features: dict[str, tf.Tensor]) -> tf.Tensor:
        transformed = model.tft_layer(raw_features)
        return model({_IMAGE_XF: transformed[_IMAGE_XF]})

    def parse(serialized_examples: tf.Tensor) -> dict[str, tf.Tensor]:
        feature_spec = tf_transform_output.raw_feature_spec()
        feature_spec.pop(features.LABEL_KEY)
        return tf.io.parse_example(serialized_examples, feature_spec)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def serve_tf_examples(serialized_examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return {features.PROBABILITIES: probabilities_of(parse(serialized_examples))}

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def predict(serialized_examples: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = probabilities_of(parse(serialized_examples))
        classes = tf.argmax(probabilities, axis=-1)
        return {features.PROBABILITIES: probabilities, features.CLASSES: classes}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, features.NUM_PIXELS], tf.int64, name=features.IMAGE_KEY)
        ],
        autograph=False,
    )
    def pixels(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {features.PROBABILITIES: probabilities_of({features.IMAGE_KEY: image})}

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def transform_features(serialized_examples: tf.Tensor) -> dict[str, tf.Tensor]:
        raw_features = tf.io.parse_example(
            serialized_examples, tf_transform_output.raw_feature_spec()
        )
        return model.tft_layer(raw_features)

    return {
        features.SIGNATURE_NAME: serve_tf_examples.get_concrete_function(),
        features.PREDICT_SIGNATURE: predict.get_concrete_function(),
        features.TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
        "pixels": pixels.get_concrete_function(),
    }


def export_serving_model(
    model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput, serving_model_dir: str
) -> None:
    """Saves the model as a SavedModel whose signatures carry the Transform graph.

    `save_traces=False`: Keras would otherwise trace every layer's call
    function for the SavedModel, converting its own layer code with AutoGraph
    first, about 5 s per run (benchmarks/README.md). Nothing loads those
    traces: TFMA, TF Serving, the serving check and the TFLite converter call
    the signatures, and `tf.keras.models.load_model` rebuilds the model from
    its config (built-in layers only). The signatures are traced without
    AutoGraph for the same reason (they have no Python control flow).
    """
    model.save(
        serving_model_dir,
        save_format="tf",
        signatures=make_serving_signatures(model, tf_transform_output),
        save_traces=False,
    )


def write_tflite(saved_model_dir: str) -> dict[str, int]:
    """Converts the SavedModel's `pixels` signature to TFLite, next to the SavedModel.

    Writes `assets.extra/model.tflite` (float weights) and
    `assets.extra/model_dynamic_range.tflite` (weights quantised to 8 bits).
    The converted graph keeps the Transform's scaling inside and takes the raw
    pixels as int64, the type a tf.Example carries them in: TFMA
    (model_type tf_lite) feeds the raw feature to the TFLite input of the same
    name, as it is, without casting. Converting the concrete function makes
    that input `serving_default_image`, which TFMA reads as `image`; converting
    the SavedModel by signature key would name it `pixels_image`, and TFMA
    would silently feed defaults. TFX's TFLiteRewriter was not used: in TFX
    1.16 it ignores its converter arguments and drops assets, and it converts
    `serving_default`, whose tf.Example parsing TFLite cannot run without Flex ops.

    Returns:
      {file written: size in bytes}.
    """
    loaded = tf.saved_model.load(saved_model_dir)
    sizes = {}
    for name, optimizations in (
        (files.TFLITE_FILE, []),
        (files.TFLITE_QUANTIZED_FILE, [tf.lite.Optimize.DEFAULT]),
    ):
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [loaded.signatures["pixels"]], loaded
        )
        converter.optimizations = optimizations
        flatbuffer = converter.convert()
        path = os.path.join(saved_model_dir, name)
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "wb") as out:
            out.write(flatbuffer)
        sizes[name] = len(flatbuffer)
    logging.info("TFLite models written: %s", sizes)
    return sizes


def training_record(
    history: tf.keras.callbacks.History, callbacks: list[tf.keras.callbacks.Callback]
) -> dict[str, Any]:
    """Per-epoch metrics and the epoch whose weights were kept.

    Returns:
      {"epochs_run", "max_epochs", "best_epoch" (1-based; the epoch with the
      lowest eval loss, whose weights early stopping restores), "metrics":
      {name: [value per epoch]} including "learning_rate"}.
    """
    metrics = {name: [float(v) for v in values] for name, values in history.history.items()}
    metrics.pop("lr", None)  # ReduceLROnPlateau's copy; EpochLogger records it for every epoch
    logger = next(c for c in callbacks if isinstance(c, EpochLogger))
    metrics["learning_rate"] = list(logger.learning_rates)
    eval_losses = metrics.get("val_loss", [])
    best = min(range(len(eval_losses)), key=eval_losses.__getitem__) + 1 if eval_losses else None
    return {
        "epochs_run": len(history.epoch),
        "max_epochs": logger.max_epochs,
        "best_epoch": best,
        "metrics": metrics,
    }


def write_history(record: dict[str, Any], model_run_dir: str) -> None:
    """Saves the training record beside the TensorBoard logs (read by the run report)."""
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, files.HISTORY_FILE), "w") as out:
        json.dump(record, out, indent=2)


def warm_start_from(base_model_dir: str | None, model: tf.keras.Model) -> dict[str, Any] | None:
    """Copies the released model's weights into `model` when there is one; says what happened.

    Args:
      base_model_dir: `fn_args.base_model`: the served release as WarmStartModel
        copied it (no saved_model.pb before the first release), or None
        without --warm-start.
      model: The freshly built model the Trainer is about to fit.

    Returns:
      None without --warm-start; else the training record's `warm_start`:
      the release's version and model fingerprint, or `from_version` None
      when there was no release and the model trains from scratch.

    Raises:
      ValueError: the release's layers do not fit this model (hidden_units
        changed since): the message says to train once without --warm-start.
    """
    if base_model_dir is None:
        return None
    if not tf.io.gfile.exists(os.path.join(base_model_dir, files.SAVED_MODEL_FILE)):
        logging.warning("--warm-start: no release to start from yet, training from scratch")
        return {"from_version": None, "note": "no release to start from: trained from scratch"}
    released = tf.keras.models.load_model(base_model_dir, compile=False)
    weights = released.get_weights()
    have = [tuple(weight.shape) for weight in weights]
    want = [tuple(weight.shape) for weight in model.get_weights()]
    if have != want:
        raise ValueError(
            f"--warm-start: the released model's weights {have} do not fit this Trainer's "
            f"model {want} (hidden_units changed since that release); train once without "
            "--warm-start"
        )
    model.set_weights(weights)
    manifest = releases.read_manifest(base_model_dir) or {}
    logging.info("--warm-start: starting from release %s", manifest.get("version"))
    return {
        "from_version": manifest.get("version"),
        "model_fingerprint": manifest.get(releases.FINGERPRINT_KEY),
    }


def write_training_info(
    record: dict[str, Any],
    config: TrainerConfig,
    saved_model_dir: str,
    warm_start: dict[str, Any] | None = None,
) -> None:
    """Writes `assets.extra/training.json`: hyper-parameters, epochs and the warm start, if any."""
    info = {
        "hyperparameters": config.to_custom_config(),
        "warm_start": warm_start,
        "epochs_run": record["epochs_run"],
        "best_epoch": record["best_epoch"],
        "final_eval_accuracy": (record["metrics"].get("val_accuracy") or [None])[
            (record["best_epoch"] or 0) - 1
        ],
    }
    path = os.path.join(saved_model_dir, files.TRAINING_INFO_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as out:
        json.dump(info, out, indent=2)


def run_fn(fn_args: FnArgs) -> None:
    """TFX Trainer entry point: trains, then exports the serving model.

    Args:
      fn_args: Train/eval files, transform output, output dirs and the
        `custom_config` that carries `TrainerConfig`.
    """
    _check_legacy_keras()
    config = TrainerConfig.from_custom_config(fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)
    model = build_keras_model(config.hidden_units, config.learning_rate, config.dropout_rate)
    warm_start = warm_start_from(fn_args.base_model, model)
    if warm_start and warm_start["from_version"] is not None:
        config = config.for_warm_start()
        tf.keras.backend.set_value(model.optimizer.learning_rate, config.learning_rate)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train_dataset = input_fn(
        fn_args.train_files,
        fn_args.data_accessor,
        tf_transform_output,
        config.batch_size,
        shuffle_buffer=config.shuffle_buffer,
        seed=config.seed,
        max_shift=config.augment_max_shift,
    )
    eval_dataset = input_fn(
        fn_args.eval_files, fn_args.data_accessor, tf_transform_output, config.batch_size
    )
    callbacks = training_callbacks(config, fn_args.model_run_dir)
    history = model.fit(
        train_dataset,
        validation_data=eval_dataset,
        epochs=config.max_epochs,
        callbacks=callbacks,
        verbose=0,
    )
    record = training_record(history, callbacks)
    write_history(record, fn_args.model_run_dir)
    export_serving_model(model, tf_transform_output, fn_args.serving_model_dir)
    write_training_info(record, config, fn_args.serving_model_dir, warm_start)
    write_tflite(fn_args.serving_model_dir)
