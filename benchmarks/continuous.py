"""A year of production, simulated: spans of new digits arrive one per run.

    python benchmarks/continuous.py --work-dir output/continuous [--json FILE] [--smoke]

MNIST's train split is cut into a base (the first `--base` digits, what the
pipeline's `--train-limit` takes) and spans of `--span-size` digits from
the digits after it, which the base never sees. The real pipeline
(`local_runner.py`) runs once on the base alone, then once per arriving
span with `--spans-dir`. Among the spans: one drifted (inverted digits),
one with 30% of its labels shuffled, one corrupt (a truncated TFRecord
file), one as digit-folder PNGs, the rest clean TFRecords. A span that
stopped the run (a gate for new data, or unreadable) is moved to
`_quarantine/`, as the error message says to; a clean span whose model was
not blessed stays in the window. A last
run with no new span must be fully cached and release nothing.

Per run it prints what the gates said (drift distances, the label check's
disagreement rate), whether a model was released (version) and why not,
the served model's accuracy on MNIST's test split (its manifest) and on
the arriving span's held-out test slice (computed here with the served
model, the same slice the pipeline holds out), and the wall time.
`--smoke` does the same on a tiny slice (a test keeps the script working;
its figures mean nothing).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import dataclasses
import glob
import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from components import example_export, spans  # noqa: E402 (after the sys.path line)
from contract import features, files, releases  # noqa: E402
from pipeline import config as pipeline_config  # noqa: E402
from reporting import run_summary  # noqa: E402

CLEAN = "clean"
PNG = "clean, PNG folders"
INVERTED = "drifted (inverted digits)"
SHUFFLED = "30% labels shuffled"
CORRUPT = "corrupt (truncated TFRecord)"
BASE_ONLY = "base only"
SCHEDULE = (CLEAN, PNG, INVERTED, SHUFFLED, CLEAN, CORRUPT, CLEAN)
"""What arrives, one span per run."""


@dataclasses.dataclass
class Arrival:
    """One run of the simulation and what came of it."""

    span: int | None
    kind: str
    wall_s: float
    exit_code: int
    released: int | None
    outcome: str
    drift: str
    labels: str
    served: int | None
    mnist_test_accuracy: float | None
    span_test_accuracy: float | None
    executed: int
    cached: int


def write_tfrecord_span(span_dir: str, digits: example_export.DigitArrays) -> None:
    os.makedirs(span_dir)
    records = example_export.encode_examples(digits, features.IMAGE_KEY, features.LABEL_KEY)
    import tensorflow as tf

    half = len(records) // 2
    for part, chunk in enumerate((records[:half], records[half:])):
        path = os.path.join(span_dir, f"part-{part}.tfrecord.gz")
        with tf.io.TFRecordWriter(path, options=files.TFRECORD_COMPRESSION) as writer:
            for record in chunk:
                writer.write(record)


def write_png_span(span_dir: str, digits: example_export.DigitArrays) -> None:
    from PIL import Image

    for index, (pixels, label) in enumerate(zip(digits.images, digits.labels, strict=True)):
        folder = os.path.join(span_dir, str(int(label)))
        os.makedirs(folder, exist_ok=True)
        image = pixels.reshape(features.IMAGE_HEIGHT, features.IMAGE_WIDTH).astype(np.uint8)
        Image.fromarray(image).save(os.path.join(folder, f"{index:05d}.png"))


def make_span(span_dir: str, digits: example_export.DigitArrays, kind: str, seed: int) -> None:
    """Writes one arriving span of the given kind."""
    rng = np.random.RandomState(seed)
    if kind == PNG:
        write_png_span(span_dir, digits)
        return
    if kind == INVERTED:
        digits = example_export.DigitArrays(features.MAX_PIXEL_VALUE - digits.images, digits.labels)
    elif kind == SHUFFLED:
        labels = digits.labels.copy()
        chosen = rng.choice(len(labels), size=int(0.3 * len(labels)), replace=False)
        labels[chosen] = rng.permutation(labels[chosen])
        digits = example_export.DigitArrays(digits.images, labels)
    write_tfrecord_span(span_dir, digits)
    if kind == CORRUPT:
        path = sorted(glob.glob(os.path.join(span_dir, "*")))[-1]
        with open(path, "rb") as source:
            data = source.read()
        with open(path, "wb") as out:
            out.write(data[: len(data) * 2 // 3])


def span_digits(tfds_dir: str, start: int, size: int) -> example_export.DigitArrays:
    from components import tfds_mnist

    builder = tfds_mnist.prepare_mnist(pipeline_config.DEFAULT_MNIST_DIR, tfds_dir, False)
    import tensorflow_datasets as tfds

    data = tfds.as_numpy(builder.as_dataset(split=f"train[{start}:{start + size}]", batch_size=-1))
    return example_export.DigitArrays(
        data["image"].reshape(size, -1).astype(np.int64), data["label"].astype(np.int64)
    )


def newest_record(pipeline_root: str, component: str, name: str, since: float) -> dict | None:
    """The newest record file a gate wrote, and whether this run wrote it."""
    found = glob.glob(os.path.join(pipeline_root, component, "*", "*", name))
    if not found:
        return None
    path = max(found, key=os.path.getmtime)
    record = json.load(open(path))
    record["written_now"] = os.path.getmtime(path) >= since
    return record


def describe_drift(record: dict | None, exit_code: int) -> str:
    if record is None:
        return "-"
    if not record["written_now"] and exit_code == 1:
        return "not reached"
    parts = [f"{m['feature']} {m['value']:.3f}" for m in record.get("measurements", [])]
    text = ", ".join(parts) or record["verdict"]
    return text + ("" if record["written_now"] else " (cached)")


def describe_labels(record: dict | None, span: int | None, exit_code: int) -> str:
    if record is None:
        return "-"
    if not record["written_now"] and exit_code == 1:
        return "not reached"
    for judged in record.get("spans", []):
        if judged["span"] == span:
            verdict = "SUSPECT" if judged["suspect"] else "ok"
            return f"{judged['disagreement_rate']:.1%} vs {judged['expected_rate']:.1%} {verdict}"
    return record.get("verdict", "-")


def served_accuracy(serving_dir: str, digits: example_export.DigitArrays) -> float | None:
    """The served model's accuracy on `digits` (its predict signature, as a client calls it)."""
    newest = releases.newest_release(serving_dir)
    if newest is None or len(digits) == 0:
        return None
    import tensorflow as tf

    predict = tf.saved_model.load(newest.path).signatures[features.PREDICT_SIGNATURE]
    requests = example_export.encode_examples(digits, features.IMAGE_KEY, None)
    classes = predict(examples=tf.constant(requests))[features.CLASSES].numpy()
    return float(np.mean(classes == digits.labels))


def base_flags(args: argparse.Namespace, smoke_epochs: int) -> list[str]:
    """The runner's flags for a base of `args.base` digits; `--smoke` shrinks it (and args)."""
    if not args.smoke:
        return [f"--train-limit={args.base}", "--eval-holdout=3000"]
    args.base, args.span_size = 3000, 600
    return [
        f"--train-limit={args.base}",
        "--eval-holdout=300",
        "--test-limit=1000",
        f"--epochs={smoke_epochs}",
        "--accuracy-threshold=0.5",
        "--span-accuracy-threshold=0.5",
    ]


def run_once(work_dir: str, flags: list[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "local_runner.py", f"--output-dir={work_dir}/out", *flags],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process.returncode, round(time.monotonic() - started, 1), process.stdout


def _counts(stdout: str) -> tuple[int, int]:
    executed = sum(1 for line in stdout.splitlines() if line.split()[1:2] == ["executed"])
    cached = sum(1 for line in stdout.splitlines() if line.split()[1:2] == ["cached"])
    return executed, cached


def _outcome(stdout: str, metadata_path: str, released: int | None) -> str:
    """Released (version), the gate that stopped the run, or why the Pusher refused."""
    if released:
        return f"released {released}"
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("Pipeline stopped", "Pipeline run failed")):
            detail = " ".join(part.strip() for part in lines[index : index + 2])
            return detail[:220]
    summary = run_summary.latest_run_summary(metadata_path, pipeline_config.PIPELINE_NAME)
    if summary.pushed and not summary.released_now:
        return f"nothing new: already released as {summary.pushed_version}"
    reasons = summary.validation_failures or [summary.not_released_reason]
    return "not released: " + "; ".join(reasons)[:200]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", help="e.g. output/continuous (emptied first)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--base", type=int, default=30_000)
    parser.add_argument("--span-size", type=int, default=4_000)
    parser.add_argument("--smoke", action="store_true", help="tiny slice; figures mean nothing")
    parser.add_argument(
        "--render", metavar="JSON", help="print the table of an earlier --json file; run nothing"
    )
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render) as source:
            print(render([Arrival(**fields) for fields in json.load(source)]))
        return 0
    if not args.work_dir:
        parser.error("--work-dir is required (unless --render)")
    work_dir = os.path.abspath(args.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    spans_dir = os.path.join(work_dir, "spans")
    os.makedirs(os.path.join(spans_dir, "_quarantine"))
    flags = base_flags(args, smoke_epochs=8)
    serving_dir = os.path.join(work_dir, "out", "serving", pipeline_config.PIPELINE_NAME)
    pipeline_root = os.path.join(work_dir, "out", "pipeline")
    arrivals: list[Arrival] = []

    def record(span, kind, exit_code, wall_s, stdout, before, since, test_digits):
        newest = releases.newest_release(serving_dir)
        released = newest.version if newest and newest.version not in before else None
        manifest = releases.read_manifest(newest.path) if newest else {}
        executed, cached = _counts(stdout)
        arrival = Arrival(
            span=span,
            kind=kind,
            wall_s=wall_s,
            exit_code=exit_code,
            released=released,
            outcome=_outcome(stdout, os.path.join(work_dir, "out", "metadata.db"), released),
            drift=describe_drift(
                newest_record(pipeline_root, "DriftCheck", files.DRIFT_FILE, since), exit_code
            ),
            labels=describe_labels(
                newest_record(pipeline_root, "LabelCheck", files.LABEL_CHECK_FILE, since),
                span,
                exit_code,
            ),
            served=newest.version if newest else None,
            mnist_test_accuracy=(manifest or {}).get("test_accuracy"),
            span_test_accuracy=served_accuracy(serving_dir, test_digits)
            if test_digits is not None
            else None,
            executed=executed,
            cached=cached,
        )
        arrivals.append(arrival)
        print(json.dumps(dataclasses.asdict(arrival)), flush=True)

    since = time.time()
    exit_code, wall_s, stdout = run_once(work_dir, flags)
    record(None, BASE_ONLY, exit_code, wall_s, stdout, set(), since, None)
    tfds_dir = os.path.join(work_dir, "out", "tfds")
    spans_flags = [*flags, f"--spans-dir={spans_dir}"]
    for number, kind in enumerate(SCHEDULE, start=1):
        start = args.base + (number - 1) * args.span_size
        digits = span_digits(tfds_dir, start, args.span_size)
        span_dir = os.path.join(spans_dir, f"span-{number}")
        make_span(span_dir, digits, kind, seed=number)
        _, _, test = spans.split_span(
            len(digits),
            pipeline_config.SpanConfig().eval_fraction,
            pipeline_config.SpanConfig().test_fraction,
            pipeline_config.DataConfig().split_seed,
            number,
        )
        test_digits = digits.take(test)
        if kind == INVERTED:
            test_digits = example_export.DigitArrays(
                features.MAX_PIXEL_VALUE - test_digits.images, test_digits.labels
            )
        before = {release.version for release in releases.list_releases(serving_dir)}
        since = time.time()
        exit_code, wall_s, stdout = run_once(work_dir, spans_flags)
        record(number, kind, exit_code, wall_s, stdout, before, since, test_digits)
        if exit_code == 1:  # a gate for new data stopped the run: retire the span, as it says
            shutil.move(span_dir, os.path.join(spans_dir, "_quarantine", f"span-{number}"))
    before = {release.version for release in releases.list_releases(serving_dir)}
    since = time.time()
    exit_code, wall_s, stdout = run_once(work_dir, spans_flags)
    record(None, "no new span", exit_code, wall_s, stdout, before, since, None)
    print(render(arrivals))
    if args.json:
        with open(args.json, "w") as out:
            json.dump([dataclasses.asdict(a) for a in arrivals], out, indent=2)
    return 0


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render(arrivals: list[Arrival]) -> str:
    lines = [
        "| run | span arriving | drift gate (JS image, L-inf label) | label check "
        "(disagreement vs test error) | outcome | served | MNIST test | span test slice "
        "| executed / cached | wall |",
        "| ---: | --- | --- | --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for index, a in enumerate(arrivals):
        span = f"span-{a.span}: {a.kind}" if a.span else a.kind
        if a.kind == BASE_ONLY:  # no spans yet: no gate for new data in the pipeline
            a = dataclasses.replace(a, drift="-", labels="-")
        lines.append(
            f"| {index} | {span} | {a.drift} | {a.labels} | {a.outcome} | {a.served or '-'} | "
            f"{_accuracy(a.mnist_test_accuracy)} | {_accuracy(a.span_test_accuracy)} | "
            f"{a.executed} / {a.cached} | {a.wall_s:.0f} s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
