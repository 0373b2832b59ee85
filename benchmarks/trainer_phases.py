"""Where the Trainer's fixed seconds go: run_fn's steps timed on a real run's outputs.

    python benchmarks/trainer_phases.py --output-dir output [--epochs N]

Takes the newest Transform outputs of a pipeline run in --output-dir and does
what `run_fn` does, step by step, in a fresh process, printing each step's
seconds: building the train and eval input pipelines, the model, the first
epoch, the other epochs, tracing the serving signatures, saving the
SavedModel and converting it to TFLite. The steps that do not grow with the
data (tracing, saving, converting) are what a 10%-data run cannot shrink.
Run it from another checkout (`git worktree add`) to time older code on the
same outputs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import glob
import importlib
import json
import tempfile
import time

import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils
from tfx.types import standard_artifacts

from pipeline.config import TrainerConfig


def newest_output(output_dir: str, component: str, name: str) -> str:
    """The newest `<output_dir>/pipeline/<component>/<name>/<execution id>` folder."""
    found = glob.glob(os.path.join(output_dir, "pipeline", component, name, "*"))
    if not found:
        raise SystemExit(f"no {component} {name} in {output_dir}: run the pipeline there first")
    return max(found, key=lambda path: int(os.path.basename(path)))


class Stopwatch:
    """Records the seconds since the previous lap under a name."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self._last, 2)
        self._last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", required=True, help="a pipeline run's --output-dir")
    parser.add_argument("--epochs", type=int, default=TrainerConfig().max_epochs)
    args = parser.parse_args()
    watch = Stopwatch()
    # Imported here, after TensorFlow, TFT and TFX: what run_fn's module adds.
    mnist_trainer = importlib.import_module("pipeline.modules.trainer.mnist_trainer")
    watch.lap("import the trainer module")
    examples = standard_artifacts.Examples()
    examples.uri = newest_output(args.output_dir, "Transform", "transformed_examples")
    examples.split_names = json.dumps(["train", "eval"])
    fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples]}, {"train_args": "{}", "eval_args": "{}"}
    )
    transform_output = tft.TFTransformOutput(
        newest_output(args.output_dir, "Transform", "transform_graph")
    )
    config = TrainerConfig(max_epochs=args.epochs)
    watch.lap("read the Transform outputs")
    train = mnist_trainer.input_fn(
        fn_args.train_files,
        fn_args.data_accessor,
        transform_output,
        config.batch_size,
        shuffle_buffer=config.shuffle_buffer,
        seed=config.seed,
        max_shift=config.augment_max_shift,
    )
    watch.lap("train input pipeline")
    evaluation = mnist_trainer.input_fn(
        fn_args.eval_files, fn_args.data_accessor, transform_output, config.batch_size
    )
    watch.lap("eval input pipeline")
    model = mnist_trainer.build_keras_model(
        config.hidden_units, config.learning_rate, config.dropout_rate
    )
    watch.lap("model")
    model.fit(train, validation_data=evaluation, epochs=1, verbose=0)
    watch.lap("first epoch")
    model.fit(train, validation_data=evaluation, epochs=config.max_epochs - 1, verbose=0)
    watch.lap(f"other {config.max_epochs - 1} epochs")
    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = os.path.join(scratch, "model")
        export = getattr(mnist_trainer, "export_serving_model", None)
        if export is not None:
            export(model, transform_output, saved_model_dir)
        else:  # run_fn's export before export_serving_model existed (older checkouts)
            model.save(
                saved_model_dir,
                save_format="tf",
                signatures=mnist_trainer.make_serving_signatures(model, transform_output),
            )
        watch.lap("export: signatures + SavedModel")
        mnist_trainer.write_tflite(saved_model_dir)
        watch.lap("TFLite (two conversions)")
    print(f"trainer module: {mnist_trainer.__file__}")
    for name, seconds in watch.laps.items():
        print(f"{name:<34} {seconds:6.2f} s")
    print(json.dumps(watch.laps))


if __name__ == "__main__":
    main()
