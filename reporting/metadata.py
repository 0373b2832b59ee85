"""The one reader of ML Metadata for the reports: runs, executions, events, properties.

The run summary, the lineage command and the HTML report all read a run
through these functions, so they agree on what a run did and which
artifact came from where. Read-only: nothing here writes to the store,
except the one explicit step that creates a shared store's schema:

    python -m reporting.metadata init-store --metadata postgresql://USER@HOST:PORT/DBNAME

(`contract.metadata_store`: run it once before the first run into a new
PostgreSQL database; it creates the database if it is missing, and
upgrades an older schema.)
"""

import argparse
import dataclasses
import datetime
import sys
from typing import Any

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from contract import metadata_store as stores
from contract import tfx_internals

Artifact = metadata_store_pb2.Artifact

_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "executed",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
}


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    """One component's execution within a pipeline run."""

    node_id: str
    state: str
    seconds: float
    outputs: dict[str, metadata_store_pb2.Artifact]


def connect(metadata: str) -> metadata_store.MetadataStore:
    """Opens a run's ML Metadata for reading: a SQLite path or a `--metadata` URL.

    Raises:
      contract.metadata_store.StoreError: it cannot be opened (the message says why).
    """
    return stores.open_store(metadata, readonly=True)


def _node_id(store: metadata_store.MetadataStore, execution_id: int, pipeline_name: str) -> str:
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == "node":
            return context.name.removeprefix(f"{pipeline_name}.")
    return "?"


def component_runs(
    store: metadata_store.MetadataStore, contextid: int, pipeline_name: str
) -> list[ComponentRun]:
    """Lists the executions of one pipeline run with their output artifacts."""
    executions = sorted(
        store.get_executions_by_context(contextid), key=lambda e: e.create_time_since_epoch
    )
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifact_ids = {event.artifact_id for event in events}
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list(artifact_ids))}
    runs = []
    for execution in executions:
        outputs = {
            event.path.steps[0].key: artifacts[event.artifact_id]
            for event in events
            if event.execution_id == execution.id
            and event.type == metadata_store_pb2.Event.OUTPUT
            and event.path.steps
        }
        runs.append(
            ComponentRun(
                node_id=_node_id(store, execution.id, pipeline_name),
                state=_STATE_NAMES.get(execution.last_known_state, "unknown"),
                seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch)
                / 1000.0,
                outputs=outputs,
            )
        )
    return runs


def run_context(
    store: metadata_store.MetadataStore, run_id: str | None = None
) -> metadata_store_pb2.Context:
    """The `pipeline_run` context of `run_id` (None: the newest run).

    Raises:
      LookupError: The store has no such run.
    """
    if run_id is not None:
        context = store.get_context_by_type_and_name("pipeline_run", run_id)
        if context is None:
            raise LookupError(f"no pipeline run {run_id!r} in ML Metadata")
        return context
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise LookupError("no pipeline run recorded in ML Metadata")
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def pipeline_of(store: metadata_store.MetadataStore, run: metadata_store_pb2.Context) -> str:
    """The name of the pipeline `run` (a `pipeline_run` context) is a run of: its parent's."""
    for parent in store.get_parent_contexts_by_context(run.id):
        if parent.type == tfx_internals.PIPELINE_CONTEXT_TYPE:
            return parent.name
    raise LookupError(f"pipeline run {run.name!r} has no pipeline context in ML Metadata")


def node_state(metadata: str, pipeline_name: str, run_id: str, node_id: str) -> str:
    """How `node_id` ended in run `run_id`: executed, cached, failed, ... or unknown."""
    store = connect(metadata)
    try:
        context = run_context(store, run_id)
    except LookupError:
        return "unknown"
    for component in component_runs(store, context.id, pipeline_name):
        if component.node_id == node_id:
            return component.state
    return "unknown"


def iso_time(milliseconds: int) -> str:
    return datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC).isoformat(
        timespec="seconds"
    )


def artifact_property(artifact_or_execution, name: str) -> Any:
    value = artifact_or_execution.custom_properties.get(name)
    if value is None:
        value = artifact_or_execution.properties.get(name)
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


class Lineage:
    """Event-walking helpers over one ML Metadata store."""

    def __init__(self, store: metadata_store.MetadataStore):
        self.store = store
        self._types = {t.id: t.name for t in store.get_artifact_types()}

    def type_name(self, artifact: Artifact) -> str:
        return self._types.get(artifact.type_id, "?")

    def producer(self, artifact: Artifact) -> metadata_store_pb2.Execution:
        """The execution that output `artifact` (the first, if cached runs reuse it)."""
        events = [
            e
            for e in self.store.get_events_by_artifact_ids([artifact.id])
            if e.type == metadata_store_pb2.Event.OUTPUT
        ]
        (execution,) = self.store.get_executions_by_id([min(e.execution_id for e in events)])
        return execution

    def _linked(self, execution_id: int, event_type: int) -> dict[str, list[Artifact]]:
        events = [
            e
            for e in self.store.get_events_by_execution_ids([execution_id])
            if e.type == event_type and e.path.steps
        ]
        artifacts = {
            a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])
        }
        linked: dict[str, list[Artifact]] = {}
        for event in events:
            linked.setdefault(event.path.steps[0].key, []).append(artifacts[event.artifact_id])
        return linked

    def inputs(self, execution_id: int) -> dict[str, list[Artifact]]:
        return self._linked(execution_id, metadata_store_pb2.Event.INPUT)

    def outputs(self, execution_id: int) -> dict[str, list[Artifact]]:
        return self._linked(execution_id, metadata_store_pb2.Event.OUTPUT)


def main(argv: list[str] | None = None) -> int:
    """`init-store --metadata URL`: creates (or upgrades) a store's schema; exit 0 or 1."""
    parser = argparse.ArgumentParser(description="ML Metadata store commands")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init-store", help="create or upgrade the schema, once")
    init.add_argument("--metadata", required=True, help="postgresql://USER@HOST:PORT/DBNAME")
    args = parser.parse_args(argv)
    try:
        where = stores.parse(args.metadata)
        stores.open_store(where, create=True)
    except stores.StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ML Metadata store ready: {where.redacted()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
