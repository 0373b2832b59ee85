"""Cold vs warm retraining on the same new data, in one invocation.

    python benchmarks/warm_start.py --work-dir output/warm_start [--json FILE] [--smoke]

1. base: the real pipeline (`local_runner.py`) on the first `--base` MNIST
   train digits, cold, until it releases model R;
2. a clean span of `--span-size` digits from after the base (digits R never
   saw) arrives in a spans folder;
3. the base's output directory is copied twice. On one copy the pipeline runs
   cold on MNIST plus the span (`--spans-dir`), on the other with
   `--warm-start` as well: the Trainer starts from R's weights and trains the
   short schedule. The two arms run one after the other, never at once.

Per arm it prints the whole run's wall time, the Trainer's seconds and
epochs, whether it released and why not, the candidate's accuracy on MNIST's
test split (the Evaluator's) and on the span's held-out test slice (the
SpanEvaluator's), with R's MNIST test accuracy to compare; then the ratios
warm / cold for the Trainer and for the whole run. The gates apply
unchanged to both arms. `--smoke` does the same on a tiny slice (a test
keeps the script working; its figures mean nothing).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import dataclasses
import json
import pathlib
import shutil
import sys

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks import continuous  # noqa: E402 (after the sys.path line)
from contract import artifacts, evaluation, releases  # noqa: E402
from pipeline import config as pipeline_config  # noqa: E402
from reporting import run_summary  # noqa: E402

FIXED_COMPONENTS = ("MnistExampleGen", "StatisticsGen", "Transform", "Evaluator")
"""Components a warm start does not shorten (they read all of MNIST plus the window)."""


@dataclasses.dataclass
class Arm:
    """One retraining run on the new data and what came of it."""

    name: str
    wall_s: float
    exit_code: int
    trainer_s: float | None
    epochs_run: int | None
    released: int | None
    not_released_reason: str
    mnist_test_accuracy: float | None
    span_test_accuracy: float | None
    component_s: dict[str, float]


def measure(name: str, arm_dir: str, flags: list[str]) -> Arm:
    """Runs the pipeline with output dir `<arm_dir>/out` and reads what came of it."""
    output_dir = os.path.join(arm_dir, "out")
    serving = pipeline_config.OutputLayout(output_dir).serving_model_dir
    before = {released.version for released in releases.list_releases(serving)}
    exit_code, wall_s, stdout = continuous.run_once(arm_dir, flags)
    if exit_code not in (0, 2):  # 2: not blessed, a figure in itself
        raise SystemExit(f"{name}: the run failed (exit {exit_code}):\n{stdout[-3000:]}")
    summary = run_summary.latest_run_summary(
        pipeline_config.OutputLayout(output_dir).metadata_path, pipeline_config.PIPELINE_NAME
    )
    trainer = summary.component("Trainer")
    span_evaluator = summary.component("SpanEvaluator")
    span_accuracy = None
    if span_evaluator is not None and "evaluation" in span_evaluator.outputs:
        span_accuracy = evaluation.overall_accuracy(span_evaluator.outputs["evaluation"].uri)
    newest = releases.newest_release(serving)
    return Arm(
        name=name,
        wall_s=wall_s,
        exit_code=exit_code,
        trainer_s=trainer.seconds if trainer else None,
        epochs_run=epochs_run(trainer),
        released=newest.version if newest and newest.version not in before else None,
        not_released_reason=summary.not_released_reason,
        mnist_test_accuracy=summary.test_accuracy,
        span_test_accuracy=span_accuracy,
        component_s={c.node_id: c.seconds for c in summary.components if c.seconds is not None},
    )


def epochs_run(trainer) -> int | None:
    """How many epochs the run's Trainer ran (its training_history.json)."""
    if trainer is None or "model_run" not in trainer.outputs:
        return None
    record = artifacts.read_history(trainer.outputs["model_run"].uri)
    return record["epochs_run"] if record else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", required=True, help="e.g. output/warm_start (emptied first)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--base", type=int, default=30_000)
    parser.add_argument("--span-size", type=int, default=4_000)
    parser.add_argument("--smoke", action="store_true", help="tiny slice; figures mean nothing")
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    flags = continuous.base_flags(args, smoke_epochs=4)
    if args.smoke:
        flags.append("--warm-start-epochs=1")
    base_dir = os.path.join(work_dir, "base")
    base = measure("base (cold, MNIST only)", base_dir, flags)
    if base.released is None:
        raise SystemExit(f"the base run released nothing: {base.not_released_reason}")
    spans_dir = os.path.join(work_dir, "spans")
    tfds_dir = pipeline_config.OutputLayout(os.path.join(base_dir, "out")).tfds_data_dir
    digits = continuous.span_digits(tfds_dir, args.base, args.span_size)
    continuous.make_span(os.path.join(spans_dir, "span-1"), digits, continuous.CLEAN, seed=1)
    span_flags = [*flags, f"--spans-dir={spans_dir}"]
    arms = []
    for name, extra in (("cold", []), ("warm", ["--warm-start"])):
        arm_dir = os.path.join(work_dir, name)
        shutil.copytree(base_dir, arm_dir, symlinks=True)
        arms.append(measure(name, arm_dir, [*span_flags, *extra]))
    cold, warm = arms
    results = {
        "base": dataclasses.asdict(base),
        "cold": dataclasses.asdict(cold),
        "warm": dataclasses.asdict(warm),
        "trainer_ratio": _ratio(warm.trainer_s, cold.trainer_s),
        "run_ratio": _ratio(warm.wall_s, cold.wall_s),
        "fixed_s": {
            name: {arm.name: arm.component_s.get(name) for arm in arms} for name in FIXED_COMPONENTS
        },
        "smoke": args.smoke,
    }
    print(render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def _figure(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(results: dict) -> str:
    """The benchmarks/README.md table, from the figures."""
    base = results["base"]
    lines = [
        "| arm | wall | Trainer | epochs | MNIST test | span test slice | released |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for arm in (base, results["cold"], results["warm"]):
        outcome = arm["released"] or f"no: {arm['not_released_reason']}"
        lines.append(
            f"| {arm['name']} | {arm['wall_s']:.1f} s | {_figure(arm['trainer_s'], 1)} s | "
            f"{arm['epochs_run']} | {_figure(arm['mnist_test_accuracy'])} | "
            f"{_figure(arm['span_test_accuracy'])} | {outcome} |"
        )
    fixed = ", ".join(
        f"{name} {_figure(by_arm.get('cold'), 1)} / {_figure(by_arm.get('warm'), 1)} s"
        for name, by_arm in results["fixed_s"].items()
    )
    lines += [
        "",
        f"warm / cold: Trainer {_figure(results['trainer_ratio'], 3)}, "
        f"whole run {_figure(results['run_ratio'], 3)}",
        f"fixed costs (cold / warm): {fixed}",
        f"warm start from the base's release: MNIST test {_figure(base['mnist_test_accuracy'])}"
        f" -> {_figure(results['warm']['mnist_test_accuracy'])}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
