"""Run flags: nonsense is a one-line parser error before anything runs.

The shared flags are checked through a bare parser (what both runners
build) and through `local_runner.parse_args`, which also checks --mnist-dir
and --extra-examples.
"""

import argparse
import dataclasses
import shutil

import pytest
import tensorflow as tf

import local_runner
from pipeline import config as pipeline_config
from pipeline import run_flags

BAD_RUN_FLAGS = {
    # flags: what the one-line reason must say
    "epochs_0": (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    "threshold_percent": (
        ["--accuracy-threshold", "97"],
        "argument --accuracy-threshold: must be a fraction in (0, 1], got 97.0",
    ),
    "threshold_0": (
        ["--accuracy-threshold", "0"],
        "argument --accuracy-threshold: must be a fraction in (0, 1], got 0.0",
    ),
    "test_limit_negative": (["--test-limit", "-1"], "argument --test-limit: must be >= 0, got -1"),
    "train_limit_negative": (
        ["--train-limit", "-5"],
        "argument --train-limit: must be >= 0, got -5",
    ),
    "holdout_0": (["--eval-holdout", "0"], "argument --eval-holdout: must be >= 1, got 0"),
    "holdout_all_of_mnist": (
        ["--eval-holdout", "60000"],
        "--eval-holdout (60000) must be smaller than the training examples (60000)",
    ),
    "holdout_all_of_the_limit": (
        ["--train-limit", "100", "--eval-holdout", "100"],
        "--eval-holdout (100) must be smaller than the training examples (100)",
    ),
    "epochs_not_a_number": (["--epochs", "three"], "expected a whole number, got 'three'"),
}


def _run_flags_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner")
    run_flags.add_run_flags(parser)
    return parser


def _parse_run_flags(argv: list[str]) -> argparse.Namespace:
    parser = _run_flags_parser()
    args = parser.parse_args(argv)
    run_flags.check_run_flags(parser, args)
    return args


def _parser_error(parse, argv, capsys) -> str:
    """The one `error:` line argparse printed for `argv` (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if "error: " in line]
    assert len(errors) == 1, captured.err
    assert captured.err.rstrip("\n").splitlines()[-1] == errors[0], "the reason ends the output"
    return errors[0]


@pytest.mark.parametrize("name", sorted(BAD_RUN_FLAGS))
def test_bad_run_flag_is_a_one_line_parser_error(name, capsys):
    argv, reason = BAD_RUN_FLAGS[name]
    assert reason in _parser_error(_parse_run_flags, argv, capsys)


@pytest.mark.parametrize("name", sorted(BAD_RUN_FLAGS))
def test_local_runner_rejects_bad_run_flags_before_running(name, tmp_path, capsys):
    argv, reason = BAD_RUN_FLAGS[name]
    output_dir = tmp_path / "out"
    assert reason in _parser_error(
        local_runner.parse_args, [f"--output-dir={output_dir}", *argv], capsys
    )
    assert not output_dir.exists(), "nothing may run, not even the output dir may appear"


def test_default_flags_give_the_default_config():
    assert run_flags.build_config(_parse_run_flags([])) == pipeline_config.PipelineConfig()


def test_good_flags_set_the_config():
    args = _parse_run_flags(
        [
            "--accuracy-threshold=0.9",
            "--epochs=4",
            "--train-limit=3000",
            "--test-limit=1000",
            "--eval-holdout=500",
        ]
    )
    defaults = pipeline_config.PipelineConfig()
    assert run_flags.build_config(args) == dataclasses.replace(
        defaults,
        accuracy_threshold=0.9,
        trainer=dataclasses.replace(defaults.trainer, max_epochs=4),
        data=dataclasses.replace(
            defaults.data, train_limit=3000, test_limit=1000, eval_holdout_size=500
        ),
    )


def test_warm_start_flags_set_the_config():
    config = run_flags.build_config(_parse_run_flags(["--warm-start", "--warm-start-epochs=2"]))
    assert config.warm_start and config.trainer.warm_start_epochs == 2
    assert not run_flags.build_config(_parse_run_flags([])).warm_start


def test_edge_values_are_accepted():
    args = _parse_run_flags(
        ["--accuracy-threshold=1", "--epochs=1", "--train-limit=2", "--eval-holdout=1"]
    )
    config = run_flags.build_config(args)
    assert config.accuracy_threshold == 1.0
    assert config.trainer.max_epochs == 1
    assert (config.data.train_limit, config.data.eval_holdout_size) == (2, 1)
    assert _parse_run_flags(["--eval-holdout=59999"]).eval_holdout == 59999


# --mnist-dir and --extra-examples, checked by local_runner.parse_args.


def _runner_args(tmp_path, *flags: str) -> list[str]:
    return [f"--output-dir={tmp_path / 'out'}", *flags]


def test_mnist_dir_without_the_archives_is_rejected(tmp_path, mnist_dir, capsys):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(f"{mnist_dir}/train-images-idx3-ubyte.gz", partial)
    for folder in (partial, tmp_path / "missing"):
        error = _parser_error(
            local_runner.parse_args, _runner_args(tmp_path, f"--mnist-dir={folder}"), capsys
        )
        assert f"--mnist-dir {folder} does not hold the four MNIST archives" in error
        assert "t10k-labels-idx1-ubyte.gz" in error
        assert "--download" in error


def test_mnist_dir_without_the_archives_is_accepted_with_download(tmp_path):
    args = local_runner.parse_args(
        _runner_args(tmp_path, f"--mnist-dir={tmp_path / 'missing'}", "--download")
    )
    assert args.download
    assert args.mnist_dir == str(tmp_path / "missing")


def test_vendored_archives_are_accepted(tmp_path, mnist_dir):
    args = local_runner.parse_args(_runner_args(tmp_path, f"--mnist-dir={mnist_dir}"))
    assert args.mnist_dir == mnist_dir and not args.download


def _extra_examples_error(tmp_path, folder, capsys) -> str:
    return _parser_error(
        local_runner.parse_args, _runner_args(tmp_path, f"--extra-examples={folder}"), capsys
    )


def test_extra_examples_folder_must_exist(tmp_path, capsys):
    folder = tmp_path / "missing"
    assert f"--extra-examples {folder}: no such folder" in _extra_examples_error(
        tmp_path, folder, capsys
    )


def test_extra_examples_folder_must_not_be_empty(tmp_path, capsys):
    folder = tmp_path / "extra"
    folder.mkdir()
    error = _extra_examples_error(tmp_path, folder, capsys)
    assert f"--extra-examples {folder}: holds no TFRecord files (0 files" in error


def test_extra_examples_folder_of_other_files_is_rejected(tmp_path, capsys):
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "digits.csv").write_text("label,pixel0\n3,0\n")
    (folder / "digits.gz").write_bytes(b"not gzip at all")
    error = _extra_examples_error(tmp_path, folder, capsys)
    assert "holds no TFRecord files (2 files, none reads as one)" in error


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_extra_examples_folder_with_a_tfrecord_file_is_accepted(tmp_path, compression):
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "README.txt").write_text("new digits, drawn by hand\n")
    name = "digits.tfrecord.gz" if compression else "digits.tfrecord"
    example = tf.train.Example()
    example.features.feature["label"].int64_list.value.append(3)
    options = tf.io.TFRecordOptions(compression_type=compression)
    with tf.io.TFRecordWriter(str(folder / name), options) as writer:
        writer.write(example.SerializeToString())

    args = local_runner.parse_args(_runner_args(tmp_path, f"--extra-examples={folder}"))

    assert args.extra_examples == str(folder)
