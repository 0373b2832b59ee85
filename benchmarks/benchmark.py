"""Benchmark: the pipeline against the blog's script and a plain Keras script, one run.

    python benchmarks/benchmark.py [--json FILE] [--keep-full-run DIR] [--smoke]

Runs on this machine, in one invocation: (0) the blog post's script
(benchmarks/seed_recipe.py) from the archives, (1) the plain Keras script
with the pipeline's own model and training recipe, from the archives, (2) the
full pipeline in a fresh output dir, TFDS prepared from the archives too (wall
time, per-component times from ML Metadata, where each component's seconds
go from its log (benchmarks/profile_log.py), peak memory of the process tree),
(3) the same pipeline again (cached), (4) Transform throughput against a
tf.data map doing the same scaling, (5) serving latency of the pushed model in
a fresh process against the Keras model called directly, (6) pipeline time at
10% and 50% of the training data (TFDS dir reused; --smoke: 10% only). Prints a table and the
ratios. `--keep-full-run DIR` keeps the full run's output dir (its log,
report and release) and its terminal output in DIR/console.txt. `--smoke`
runs everything on a tiny slice (for tests); its figures mean nothing.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import dataclasses
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import psutil

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks import profile_log  # noqa: E402 (after the sys.path line)
from contract import artifacts, features  # noqa: E402
from pipeline import config  # noqa: E402
from reporting import run_summary  # noqa: E402

FULL_TRAIN_EXAMPLES = 60_000
GROWTH = (0.1, 0.5)
"""Shares of the training data the cost-growth runs use (step 6)."""
SMOKE_GROWTH = (0.1,)
"""--smoke runs one of them: the loop is the same code for every share."""


@dataclasses.dataclass
class Measured:
    """A subprocess's wall time, peak memory (whole process tree) and stdout."""

    wall_s: float
    peak_gb: float
    stdout: str
    returncode: int


def run_measured(command: list[str]) -> Measured:
    """Runs a command, sampling the RSS of it and its children every 0.1 s."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    stdout = process.stdout.read()
    if process.returncode != 0:
        raise SystemExit(
            f"benchmark step failed: {' '.join(command)} exited {process.returncode}; "
            "its figures would be meaningless (a pipeline run must end with a release)"
        )
    return Measured(
        round(time.monotonic() - started, 1), round(peak / 2**30, 2), stdout, process.returncode
    )


def _json_line(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def run_pipeline(output_dir: str, tfds_dir: str | None, flags: list[str]) -> Measured:
    command = [sys.executable, "local_runner.py", f"--output-dir={output_dir}", *flags]
    if tfds_dir:
        command.append(f"--tfds-data-dir={tfds_dir}")
    return run_measured(command)


def tfdata_throughput(examples_uri: str) -> tuple[float, int]:
    """Examples/s of a plain tf.data parse + scale over the train and eval splits."""
    import tensorflow as tf

    files = tf.io.gfile.glob(f"{examples_uri}/Split-train/*") + tf.io.gfile.glob(
        f"{examples_uri}/Split-eval/*"
    )
    spec = {
        features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
        features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
    }

    def scale(batch):
        parsed = tf.io.parse_example(batch, spec)
        return tf.cast(parsed[features.IMAGE_KEY], tf.float32) / 255.0, parsed[features.LABEL_KEY]

    dataset = (
        tf.data.TFRecordDataset(files, compression_type="GZIP")
        .batch(1024)
        .map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    )
    started, count = time.monotonic(), 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return count / (time.monotonic() - started), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny data, for tests only")
    parser.add_argument(
        "--keep-full-run", metavar="DIR", help="run the full pipeline in DIR (new) and keep it"
    )
    args = parser.parse_args()
    smoke_flags = (
        [
            "--train-limit=1500",
            "--test-limit=500",
            "--eval-holdout=300",
            "--epochs=1",
            "--accuracy-threshold=0.1",
        ]
        if args.smoke
        else []
    )
    train_total = 1500 if args.smoke else FULL_TRAIN_EXAMPLES
    results: dict = {
        "machine": {
            "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "date": datetime.date.today().isoformat(),
            "python": sys.version.split()[0],
        },
        "smoke": args.smoke,
    }
    with tempfile.TemporaryDirectory() as scratch:
        # 0. The blog's script, from the archives (its own fresh TFDS dir).
        seed = run_measured(
            [
                sys.executable,
                "benchmarks/seed_recipe.py",
                *[f for f in smoke_flags if f.startswith(("--train-limit", "--test-limit"))],
                *(["--epochs=1"] if args.smoke else []),
            ]
        )
        seed_result = _json_line(seed.stdout)

        # 1. Plain script, from the archives (its own fresh TFDS dir).
        plain = run_measured(
            [
                sys.executable,
                "benchmarks/plain_keras.py",
                *[f for f in smoke_flags if not f.startswith("--accuracy")],
            ]
        )
        plain_result = _json_line(plain.stdout)

        # 2. Full pipeline, fresh output dir, TFDS prepared from the archives too.
        full_dir = os.path.abspath(args.keep_full_run) if args.keep_full_run else f"{scratch}/full"
        full = run_pipeline(full_dir, None, smoke_flags)
        if args.keep_full_run:
            pathlib.Path(full_dir, "console.txt").write_text(full.stdout)
        summary = run_summary.latest_run_summary(
            config.OutputLayout(full_dir).metadata_path, "mnist"
        )
        component_s = {c.node_id: c.seconds for c in summary.components}
        log_path = os.path.join(config.OutputLayout(full_dir).logs_dir, f"{summary.run_id}.log")
        with open(log_path, encoding="utf-8", errors="replace") as log:
            profile = profile_log.profile(log.read().splitlines())
        pipeline_epochs = _epochs_run(summary)  # read now: the scratch dir goes at the end

        # 3. The same again: fully cached.
        cached = run_pipeline(full_dir, None, smoke_flags)

        # 4. Transform throughput vs tf.data.
        examples = summary.component("MnistExampleGen").outputs["examples"]
        counts = json.loads(examples.custom_properties["split_counts"].string_value)
        transformed = counts["train"] + counts["eval"]
        transform_rate = transformed / max(component_s["Transform"], 1e-9)
        tfdata_rate, _ = tfdata_throughput(examples.uri)

        # 5. Serving, in a fresh process.
        serving = _json_line(
            run_measured(
                [sys.executable, "benchmarks/serving_latency.py", summary.pushed_destination]
                + (["--requests=30"] if args.smoke else [])
            ).stdout
        )

        # 6. Cost growth with the amount of training data (TFDS dir reused).
        growth = {"100%": full.wall_s}
        for fraction in SMOKE_GROWTH if args.smoke else GROWTH:
            limit = int(train_total * fraction)
            # Hold out the same share as the full run (5,000 of 60,000).
            # These runs measure time, not quality: a small slice may not reach 0.97.
            flags = [
                "--accuracy-threshold=0.5",
                *smoke_flags,
                f"--train-limit={limit}",
                f"--eval-holdout={limit // 12}",
            ]
            run = run_pipeline(
                f"{scratch}/growth{fraction}", config.OutputLayout(full_dir).tfds_data_dir, flags
            )
            growth[f"{round(fraction * 100)}%"] = run.wall_s

    results.update(
        {
            "wall_s": {
                "seed": seed.wall_s,
                "plain": plain.wall_s,
                "pipeline": full.wall_s,
                "pipeline_cached": cached.wall_s,
            },
            "components_s": component_s,
            "accuracy": {
                "pipeline_test": summary.test_accuracy,
                "seed_test": seed_result["test_accuracy"],
                "plain_test": plain_result["test_accuracy"],
            },
            "epochs_run": {
                "pipeline": pipeline_epochs,
                "seed": seed_result["epochs_run"],
            },
            "profile": {
                item.name: {
                    "seconds": round(item.seconds, 1),
                    **{phase: round(value, 1) for phase, value in item.phases.items()},
                    "epochs": round(sum(item.epochs), 1),
                    "rest": round(item.rest, 1),
                }
                for item in profile
            },
            "memory": {"peak_gb": full.peak_gb, "plain_peak_gb": plain.peak_gb},
            "throughput": {
                "transform_examples_per_s": round(transform_rate),
                "tfdata_examples_per_s": round(tfdata_rate),
            },
            "serving": serving,
            "growth_wall_s": growth,
            "ratios": {
                "pipeline_over_seed": round(full.wall_s / seed.wall_s, 2),
                "pipeline_over_plain": round(full.wall_s / plain.wall_s, 2),
                "tenth_over_full": round(growth["10%"] / full.wall_s, 2),
                "cached_over_full": round(cached.wall_s / full.wall_s, 3),
                "transform_over_tfdata": round(transform_rate / tfdata_rate, 3),
                "serving_p50_over_direct": round(
                    serving["serving_p50_ms"] / serving["direct_p50_ms"], 2
                ),
            },
        }
    )
    print(render(results))
    print(profile_log.render(profile))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _epochs_run(summary: run_summary.RunSummary) -> int | None:
    """How many epochs the pipeline's Trainer ran (its training_history.json)."""
    trainer = summary.component("Trainer")
    if trainer is None or "model_run" not in trainer.outputs:
        return None
    record = artifacts.read_history(trainer.outputs["model_run"].uri)
    return record["epochs_run"] if record else None


def render(results: dict) -> str:
    wall, ratios = results["wall_s"], results["ratios"]
    lines = [
        f"machine: {results['machine']}",
        f"{'blog script (seed_recipe.py)':<34} {wall['seed']:8.1f} s  test acc "
        f"{results['accuracy']['seed_test']:.4f}  epochs {results['epochs_run']['seed']}",
        f"{'plain Keras script':<34} {wall['plain']:8.1f} s  test acc "
        f"{results['accuracy']['plain_test']:.4f}  peak {results['memory']['plain_peak_gb']} GB",
        f"{'pipeline, full run':<34} {wall['pipeline']:8.1f} s  test acc "
        f"{results['accuracy']['pipeline_test']:.4f}  peak {results['memory']['peak_gb']} GB",
    ]
    lines += [f"  {name:<32} {seconds:8.1f} s" for name, seconds in results["components_s"].items()]
    lines += [
        f"{'pipeline, cached rerun':<34} {wall['pipeline_cached']:8.1f} s",
        f"{'Transform / tf.data (examples/s)':<34} "
        f"{results['throughput']['transform_examples_per_s']:8d} / "
        f"{results['throughput']['tfdata_examples_per_s']}",
        f"{'serving p50 / p95 (1 example)':<34} {results['serving']['serving_p50_ms']:.3f} / "
        f"{results['serving']['serving_p95_ms']:.3f} ms (direct Keras "
        f"{results['serving']['direct_p50_ms']:.3f} / {results['serving']['direct_p95_ms']:.3f})",
        f"{'serving batch 256 (examples/s)':<34} {results['serving']['serving_batch256_per_s']:8d} "
        f"(direct {results['serving']['direct_batch256_per_s']})",
        f"{'pipeline time by training data':<34} "
        + ", ".join(f"{k}: {v:.1f} s" for k, v in results["growth_wall_s"].items()),
        "ratios: " + ", ".join(f"{k} = {v}" for k, v in ratios.items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
