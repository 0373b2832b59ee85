"""Where did a released model come from? Reads the answer from ML Metadata and the release.

    python -m reporting.lineage --output-dir DIR [--model PATH] [--json]
    python -m reporting.lineage --output-dir DIR --list

Walks ML Metadata's own events from the release back to the data, as people
read it: release -> blessing (metrics, thresholds, baseline) -> trained
model (hyper-parameters, epochs run) -> transform graph -> examples (splits,
counts) -> TFDS dataset (name, version, archive checksums). Each step carries
its ML Metadata id, URI and creation time. `--list` shows every run and
release.

The release directory's manifest (`assets.extra/release.json`) names the ML
Metadata ids of its model and blessing, so `--model DIR` finds the chain even
when the release was made by a run that ML Metadata never heard finish (a
kill between the release and the publish). When the store is elsewhere (a
cluster's), the manifest alone is printed: version, fingerprint, metrics,
gates, baseline and data checksums.
"""

import os

if __name__ == "__main__":  # a command: silence library start-up noise before TensorFlow loads
    from reporting import console

    console.quiet_library_startup()

import argparse
import dataclasses
import json
import sys
from typing import Any

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from contract import artifacts, releases
from contract import evaluation as evaluation_results
from contract import metadata_store as stores
from contract.layout import OutputLayout
from reporting import metadata
from reporting.metadata import Lineage, artifact_property, iso_time

Artifact = metadata_store_pb2.Artifact


@dataclasses.dataclass
class Step:
    """One link of the chain: an artifact and what it says about the release."""

    stage: str
    artifact_id: int
    artifact_type: str
    uri: str
    created: str
    details: dict[str, Any]


def step(lineage: Lineage, stage: str, artifact: Artifact, **details: Any) -> Step:
    """One link of the chain: `artifact` as seen at `stage`, with what it says."""
    return Step(
        stage,
        artifact.id,
        lineage.type_name(artifact),
        artifact.uri,
        iso_time(artifact.create_time_since_epoch),
        details,
    )


def _released_by(artifact: Artifact) -> bool:
    return (
        artifact_property(artifact, "pushed") == 1
        or artifact_property(artifact, "already_released") == 1
    )


def find_release(store: metadata_store.MetadataStore, model_path: str | None = None) -> Artifact:
    """The PushedModel for `model_path` (a serving version dir), else the latest release.

    A PushedModel counts if it released the model or found it already
    released (`already_released`, e.g. after a run killed mid-publish).

    Raises:
      LookupError: nothing was released, or nothing to model_path.
    """
    pushed = [a for a in store.get_artifacts_by_type("PushedModel") if _released_by(a)]
    if model_path:
        wanted = os.path.normpath(os.path.abspath(model_path))
        pushed = [
            a
            for a in pushed
            if os.path.normpath(str(artifact_property(a, "pushed_destination"))) == wanted
        ]
    if not pushed:
        where = f" to {model_path}" if model_path else ""
        raise LookupError(f"no model was pushed{where} according to this ML Metadata store")
    return max(pushed, key=lambda a: (artifact_property(a, "pushed") == 1, a.id))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _epochs_run(model_run: Artifact | None) -> int | None:
    record = artifacts.read_history(model_run.uri) if model_run is not None else None
    return record["epochs_run"] if record else None


def trace_release(store: metadata_store.MetadataStore, pushed_model: Artifact) -> list[Step]:
    """The chain from a PushedModel back to the TFDS data it came from."""
    lineage = Lineage(store)
    pusher_inputs = lineage.inputs(lineage.producer(pushed_model).id)
    (blessing,) = pusher_inputs["model_blessing"]
    if "model" in pusher_inputs:
        (model,) = pusher_inputs["model"]
    else:  # pushed the InfraBlessing's copy, as TFX's Pusher does without a model input
        (infra_blessing,) = pusher_inputs["infra_blessing"]
        (model,) = lineage.inputs(lineage.producer(infra_blessing).id)["model"]
    release_step = step(
        lineage,
        "release",
        pushed_model,
        pushed_destination=artifact_property(pushed_model, "pushed_destination"),
        pushed_version=artifact_property(pushed_model, "pushed_version"),
        model_fingerprint=artifact_property(pushed_model, "model_fingerprint"),
    )
    return [release_step, *trace_model(lineage, model, blessing)]


def trace_manifest(store: metadata_store.MetadataStore, release_dir: str) -> list[Step] | None:
    """The chain of a release found through its manifest's ML Metadata ids.

    Returns None when the manifest names no artifact of this store (a release
    made elsewhere, or with another store).
    """
    manifest = releases.read_manifest(release_dir)
    ids = (manifest or {}).get("lineage", {})
    wanted = [ids.get(key, {}) for key in ("model", "blessing")]
    if not all(entry.get("id") for entry in wanted):
        return None
    found = {a.id: a for a in store.get_artifacts_by_id([entry["id"] for entry in wanted])}
    if not all(entry["id"] in found and found[entry["id"]].uri == entry["uri"] for entry in wanted):
        return None
    model, blessing = (found[entry["id"]] for entry in wanted)
    lineage = Lineage(store)
    release_step = Step(
        "release",
        0,
        "release manifest",
        releases.manifest_path(release_dir),
        manifest.get("released_at", ""),
        {
            "pushed_destination": release_dir,
            "pushed_version": str(manifest["version"]),
            "model_fingerprint": manifest.get("model_fingerprint"),
        },
    )
    return [release_step, *trace_model(lineage, model, blessing)]


def manifest_only(release_dir: str) -> list[Step]:
    """What a release says about itself, for when its ML Metadata is elsewhere.

    Raises:
      LookupError: the directory holds no release manifest.
    """
    manifest = releases.read_manifest(release_dir)
    if manifest is None:
        raise LookupError(f"{release_dir} holds no release manifest ({releases.MANIFEST_FILE})")
    return [
        Step(
            "release",
            0,
            "release manifest",
            releases.manifest_path(release_dir),
            manifest.get("released_at", ""),
            manifest,
        )
    ]


def trace_model(lineage: Lineage, model: Artifact, blessing: Artifact) -> list[Step]:
    """The chain from a model and its blessing back to the TFDS data."""
    steps = []
    evaluator = lineage.producer(blessing)
    evaluation = lineage.outputs(evaluator.id)["evaluation"][0]
    baselines = lineage.inputs(evaluator.id).get("baseline_model", [])
    steps.append(
        step(
            lineage,
            "blessing",
            blessing,
            blessed=artifact_property(blessing, "blessed") == 1,
            test_accuracy=_rounded(evaluation_results.overall_accuracy(evaluation.uri)),
            per_digit_accuracy={
                digit: _rounded(accuracy)
                for digit, accuracy in evaluation_results.digit_accuracy(evaluation.uri).items()
            },
            thresholds=evaluation_results.gates_of_evaluation(evaluation.uri),
            baseline_model=_baseline(baselines),
            evaluation_uri=evaluation.uri,
        )
    )

    trainer = lineage.producer(model)
    trainer_inputs = lineage.inputs(trainer.id)
    model_run = lineage.outputs(trainer.id).get("model_run", [None])[0]
    steps.append(
        step(
            lineage,
            "model",
            model,
            hyper_parameters=json.loads(artifact_property(trainer, "custom_config") or "{}"),
            epochs_run=_epochs_run(model_run),
        )
    )

    (transform_graph,) = trainer_inputs["transform_graph"]
    transform = lineage.producer(transform_graph)
    steps.append(
        step(
            lineage,
            "transform_graph",
            transform_graph,
            module=artifact_property(transform, "module_path")
            or artifact_property(transform, "preprocessing_fn"),
        )
    )

    (examples,) = lineage.inputs(transform.id)["examples"]
    example_gen = lineage.producer(examples)
    extra = lineage.inputs(example_gen.id).get("extra_examples", [])
    steps.append(
        step(
            lineage,
            "examples",
            examples,
            splits=json.loads(artifact_property(examples, "split_names") or "[]")
            if isinstance(artifact_property(examples, "split_names"), str)
            else None,
            split_counts=json.loads(artifact_property(examples, "split_counts") or "{}"),
            extra_examples=({"id": extra[0].id, "uri": extra[0].uri} if extra else None),
        )
    )
    steps.append(
        step(
            lineage,
            "tfds_dataset",
            examples,
            tfds_name=artifact_property(examples, "tfds_name"),
            tfds_version=artifact_property(examples, "tfds_version"),
            archive_sha256=json.loads(artifact_property(examples, "archive_sha256") or "{}"),
            archive_source=artifact_property(examples, "archive_source"),
        )
    )
    return steps


def _baseline(baselines: list[Artifact]) -> dict[str, Any] | None:
    """The release the candidate was compared with (LatestRelease's output), if any."""
    if not baselines or artifact_property(baselines[0], "has_release") != 1:
        return None
    return {
        "id": baselines[0].id,
        "release_version": artifact_property(baselines[0], "release_version"),
        "model_fingerprint": artifact_property(baselines[0], "model_fingerprint"),
    }


def list_runs(
    store: metadata_store.MetadataStore, pipeline_name: str | None = None
) -> list[dict[str, Any]]:
    """Every run (of `pipeline_name`; None: of every pipeline in the store), oldest first:
    pipeline, id, time, accuracy, blessed, pushed path, or why it stopped."""
    rows = []
    runs = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    for run in runs:
        pipeline = metadata.pipeline_of(store, run)
        if pipeline_name is not None and pipeline != pipeline_name:
            continue
        components = metadata.component_runs(store, run.id, pipeline)
        by_node = {c.node_id: c for c in components}
        row: dict[str, Any] = {
            "pipeline": pipeline,
            "run_id": run.name,
            "time": iso_time(run.create_time_since_epoch),
            "test_accuracy": None,
            "blessed": None,
            "pushed": None,
            "reason": "",
        }
        failed = [c.node_id for c in components if c.state == "failed"]
        evaluator = by_node.get("Evaluator")
        if evaluator and "evaluation" in evaluator.outputs:
            uri = evaluator.outputs["evaluation"].uri
            row["test_accuracy"] = evaluation_results.overall_accuracy(uri)
            row["blessed"] = artifact_property(evaluator.outputs["blessing"], "blessed") == 1
            row["reason"] = "; ".join(evaluation_results.validation_failures(uri))
        pusher = by_node.get("Pusher")
        if pusher and "pushed_model" in pusher.outputs:
            pushed_model = pusher.outputs["pushed_model"]
            if _released_by(pushed_model):
                again = pusher.state == "cached" or artifact_property(pushed_model, "pushed") != 1
                note = " (already released)" if again else ""
                row["pushed"] = f"{artifact_property(pushed_model, 'pushed_destination')}{note}"
        if failed:
            row["reason"] = f"stopped: {', '.join(failed)} failed"
        elif not pusher:
            row["reason"] = row["reason"] or "incomplete run"
        rows.append(row)
    return rows


def render_chain(steps: list[Step]) -> str:
    lines = []
    for index, step in enumerate(steps):
        arrow = "" if index == 0 else "<- "
        lines.append(
            f"{arrow}{step.stage}: {step.artifact_type} #{step.artifact_id} "
            f"({step.created}) {step.uri}"
        )
        for key, value in step.details.items():
            if isinstance(value, dict | list):
                value = json.dumps(value, sort_keys=True)
            lines.append(f"     {key}: {value}")
    return "\n".join(lines)


def render_runs(rows: list[dict[str, Any]]) -> str:
    """A table; with a pipeline column when the runs are of more than one pipeline."""
    several = len({row["pipeline"] for row in rows}) > 1
    width = max([len("pipeline"), *(len(row["pipeline"]) for row in rows)])
    pipeline = f"{'pipeline':<{width}} " if several else ""
    lines = [f"{pipeline}{'run':<28} {'accuracy':>8} {'blessed':>7}  pushed / reason"]
    for row in rows:
        accuracy = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        blessed = {True: "yes", False: "no", None: "-"}[row["blessed"]]
        outcome = row["pushed"] or f"not pushed: {row['reason'] or 'not blessed'}"
        pipeline = f"{row['pipeline']:<{width}} " if several else ""
        lines.append(f"{pipeline}{row['run_id']:<28} {accuracy:>8} {blessed:>7}  {outcome}")
    return "\n".join(lines)


def chain_for(metadata_path: str, model_path: str | None) -> list[Step]:
    """The chain of a release: through ML Metadata if it knows it, else its manifest.

    Args:
      metadata_path: The store: a SQLite path or a `--metadata` URL.
      model_path: A release's version dir; None for the newest release ML Metadata knows.

    Raises:
      LookupError: no release found.
      contract.metadata_store.StoreError: a `--metadata` URL that cannot be opened.
    """
    if "://" in metadata_path or os.path.exists(metadata_path):
        store = metadata.connect(metadata_path)
        if model_path:
            steps = trace_manifest(store, model_path)
            if steps is not None:
                return steps
        try:
            return trace_release(store, find_release(store, model_path))
        except LookupError:
            if not model_path:
                raise
    if model_path:
        return manifest_only(model_path)
    raise LookupError(f"no ML Metadata at {metadata_path}; run local_runner.py first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default="output", help="the runner's --output-dir")
    parser.add_argument("--model", help="a release's version dir (default: the latest release)")
    parser.add_argument("--list", action="store_true", help="every run and release")
    parser.add_argument("--json", action="store_true", help="JSON instead of text")
    parser.add_argument(
        "--pipeline-name",
        help="with --list: only this pipeline's runs (default: every pipeline in the store)",
    )
    parser.add_argument(
        "--metadata",
        metavar="URL",
        help="the ML Metadata store (sqlite:///PATH or postgresql://USER@HOST:PORT/DB); "
        "default: <output-dir>/metadata.db",
    )
    args = parser.parse_args(argv)
    metadata_path = args.metadata or OutputLayout(args.output_dir).metadata_path
    try:
        if args.list:
            if "://" not in metadata_path and not os.path.exists(metadata_path):
                raise LookupError(f"no ML Metadata at {metadata_path}; run local_runner.py first")
            rows = list_runs(metadata.connect(metadata_path), args.pipeline_name)
            print(json.dumps(rows, indent=2) if args.json else render_runs(rows))
        else:
            steps = chain_for(metadata_path, args.model)
            print(
                json.dumps([dataclasses.asdict(s) for s in steps], indent=2)
                if args.json
                else render_chain(steps)
            )
    except (LookupError, stores.StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
