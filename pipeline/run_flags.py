"""The flags both runners share: thresholds, epochs and the data slice.

local_runner.py and the Kubeflow compile runner take the same run settings
and turn them into the same PipelineConfig, so a pipeline compiled for
Kubeflow with `--train-limit 2500 --epochs 3` is the one `local_runner.py`
runs with those flags.
"""

import argparse
import dataclasses

from pipeline import config as pipeline_config

MNIST_TRAIN_EXAMPLES = 60_000
"""TFDS MNIST's train split: the hold-out is cut from it."""


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in (0, 1], got {value} (e.g. 0.97 for 97%)"
        )
    return value


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Adds --accuracy-threshold, --epochs, --train-limit, --test-limit, --eval-holdout.

    Each is checked by the parser, so a nonsensical value is a one-line
    error before anything runs.
    """
    defaults = pipeline_config.PipelineConfig()
    parser.add_argument(
        "--accuracy-threshold",
        type=_fraction,
        default=defaults.accuracy_threshold,
        help="lowest test accuracy that may be released, in (0, 1]",
    )
    parser.add_argument(
        "--epochs",
        type=_at_least(1),
        default=defaults.trainer.max_epochs,
        help="maximum epochs; early stopping usually ends sooner",
    )
    parser.add_argument(
        "--train-limit",
        type=_at_least(0),
        default=0,
        help="use only the first N TFDS train examples (quick trial runs); 0 = all",
    )
    parser.add_argument(
        "--test-limit", type=_at_least(0), default=0, help="likewise for test; 0 = all"
    )
    parser.add_argument(
        "--eval-holdout",
        type=_at_least(1),
        default=defaults.data.eval_holdout_size,
        help="train examples held out as the eval split for early stopping",
    )
    parser.add_argument(
        "--spans-dir",
        metavar="DIR",
        help="folder (or s3:// / gs:// path) of span-<N>/ folders of newly labelled digits, "
        "TFRecords or digit-named image folders; each run trains on MNIST plus the newest "
        "--span-window spans, gated for drift and wrong labels (docs/spans.md)",
    )
    parser.add_argument(
        "--span-window",
        type=_at_least(0),
        default=defaults.spans.span_window,
        help="train on the newest K spans; 0 = all (with --spans-dir)",
    )
    parser.add_argument(
        "--span-accuracy-threshold",
        type=_fraction,
        default=defaults.spans.span_accuracy_threshold,
        help="lowest accuracy on the spans' held-out test slice that may be released",
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="start the Trainer from the served release's weights and train a short schedule "
        "(--warm-start-epochs) on MNIST plus the span window; trains from scratch without a "
        "release",
    )
    parser.add_argument(
        "--warm-start-epochs",
        type=_at_least(1),
        default=defaults.trainer.warm_start_epochs,
        help="epochs of a warm start's short schedule",
    )
    parser.add_argument(
        "--drift-action",
        choices=("stop", "warn"),
        default="warn" if defaults.spans.drift_warn_only else "stop",
        help="what drift beyond the thresholds does: stop the run before training, or warn",
    )


def check_run_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Rejects flag combinations that could only fail later, after TFDS has run."""
    train_examples = args.train_limit or MNIST_TRAIN_EXAMPLES
    if args.eval_holdout >= train_examples:
        parser.error(
            f"--eval-holdout ({args.eval_holdout}) must be smaller than the training examples "
            f"({train_examples}): the hold-out is taken from them"
        )


def build_config(args: argparse.Namespace) -> pipeline_config.PipelineConfig:
    """Applies the run flags to the default configuration."""
    defaults = pipeline_config.PipelineConfig()
    return dataclasses.replace(
        defaults,
        accuracy_threshold=args.accuracy_threshold,
        trainer=dataclasses.replace(
            defaults.trainer, max_epochs=args.epochs, warm_start_epochs=args.warm_start_epochs
        ),
        warm_start=args.warm_start,
        data=dataclasses.replace(
            defaults.data,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
            eval_holdout_size=args.eval_holdout,
        ),
        spans=dataclasses.replace(
            defaults.spans,
            span_window=args.span_window,
            drift_warn_only=args.drift_action == "warn",
            span_accuracy_threshold=args.span_accuracy_threshold,
        ),
    )
