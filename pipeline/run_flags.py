"""The flags both runners share: thresholds, epochs and the data slice.

local_runner.py and the Kubeflow compile runner take the same run settings
and turn them into the same PipelineConfig, so a pipeline compiled for
Kubeflow with `--train-limit 2500 --epochs 3` is the one `local_runner.py`
runs with those flags.
"""

import argparse
import dataclasses

from pipeline import config as pipeline_config


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Adds --accuracy-threshold, --epochs, --train-limit, --test-limit, --eval-holdout."""
    defaults = pipeline_config.PipelineConfig()
    parser.add_argument("--accuracy-threshold", type=float, default=defaults.accuracy_threshold)
    parser.add_argument(
        "--epochs",
        type=int,
        default=defaults.trainer.max_epochs,
        help="maximum epochs; early stopping usually ends sooner",
    )
    parser.add_argument(
        "--train-limit",
        type=int,
        default=0,
        help="use only the first N TFDS train examples (quick trial runs); 0 = all",
    )
    parser.add_argument("--test-limit", type=int, default=0, help="likewise for test; 0 = all")
    parser.add_argument(
        "--eval-holdout",
        type=int,
        default=defaults.data.eval_holdout_size,
        help="train examples held out as the eval split for early stopping",
    )


def check_run_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Rejects flag combinations that could only fail later, after TFDS has run."""
    if args.train_limit and args.eval_holdout >= args.train_limit:
        parser.error(
            f"--eval-holdout ({args.eval_holdout}) must be smaller than --train-limit "
            f"({args.train_limit}): the hold-out is taken from the training examples"
        )


def build_config(args: argparse.Namespace) -> pipeline_config.PipelineConfig:
    """Applies the run flags to the default configuration."""
    defaults = pipeline_config.PipelineConfig()
    return dataclasses.replace(
        defaults,
        accuracy_threshold=args.accuracy_threshold,
        trainer=dataclasses.replace(defaults.trainer, max_epochs=args.epochs),
        data=dataclasses.replace(
            defaults.data,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
            eval_holdout_size=args.eval_holdout,
        ),
    )
