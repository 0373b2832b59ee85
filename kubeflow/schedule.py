"""Uploads a compiled pipeline to Kubeflow Pipelines and schedules recurring runs.

    python kubeflow/schedule.py --host https://KFP_HOST --pipeline-file mnist_pipeline.json \\
        --cron "0 3 * * *" [--experiment NAME] [--dry-run]

Uses the `kfp` SDK's client. The file written by kubeflow_v2_runner.py is a
pipeline *job* (pipelineSpec + runtimeConfig); KFP takes the pipelineSpec,
and the job's output directory becomes the runs' pipeline root. --dry-run
prints what would be sent and contacts no server.
"""

import argparse
import datetime
import json
import os
import sys
import tempfile

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2


class ScheduleError(RuntimeError):
    """The pipeline file or the server is not usable; the message says why."""


def load_pipeline_job(path: str) -> dict:
    """Reads a compiled pipeline (JSON or YAML) and checks it is a KFP v2 spec.

    Returns:
      {"pipelineSpec": ..., "runtimeConfig": ...}; a bare PipelineSpec file is
      accepted too.

    Raises:
      ScheduleError: the file is missing, unparsable or not a pipeline.
    """
    try:
        with open(path) as source:
            document = yaml.safe_load(source)
    except (OSError, yaml.YAMLError) as error:
        raise ScheduleError(f"cannot read pipeline file {path!r}: {error}") from error
    if not isinstance(document, dict):
        raise ScheduleError(f"{path!r} is not a pipeline file (no JSON/YAML object)")
    job = document if "pipelineSpec" in document else {"pipelineSpec": document}
    try:
        spec = json_format.ParseDict(
            job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True
        )
    except json_format.ParseError as error:
        raise ScheduleError(f"{path!r} is not a KFP v2 pipeline spec: {error}") from error
    if not spec.pipeline_info.name or not spec.root.dag.tasks:
        raise ScheduleError(
            f"{path!r} is not a KFP v2 pipeline spec (no pipelineInfo.name or no tasks); "
            "compile one with kubeflow/kubeflow_v2_runner.py"
        )
    return job


def to_kfp_cron(cron: str) -> str:
    """KFP's scheduler wants 6 cron fields (seconds first); accepts 5 or 6."""
    fields = cron.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return cron
    raise ScheduleError(f"cron {cron!r} must have 5 fields (min hour day month weekday) or 6")


def build_request(args: argparse.Namespace, job: dict) -> dict:
    """What will be sent: pipeline name, experiment, schedule, pipeline root."""
    name = job["pipelineSpec"]["pipelineInfo"]["name"]
    return {
        "host": args.host,
        "pipeline_name": name,
        "experiment": args.experiment or name,
        "job_name": f"{name}-recurring",
        "cron_expression": to_kfp_cron(args.cron),
        "pipeline_root": job.get("runtimeConfig", {}).get("gcsOutputDirectory"),
        "tasks": sorted(job["pipelineSpec"]["root"]["dag"]["tasks"]),
    }


def _upload(client, spec_path: str, name: str) -> tuple[str, str]:
    """Uploads the spec as a new pipeline, or as a new version of an existing one
    (KFP pipeline names are unique); returns (pipeline id, version id)."""
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(spec_path, pipeline_name=name)
        versions = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
        return pipeline.pipeline_id, versions[0].pipeline_version_id
    version_name = f"{name}-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}"
    version = client.upload_pipeline_version(
        spec_path, pipeline_version_name=version_name, pipeline_id=pipeline_id
    )
    return pipeline_id, version.pipeline_version_id


def submit(request: dict, job: dict) -> str:
    """Uploads the pipeline and creates the recurring run; returns its id."""
    import kfp  # imported here: --dry-run must not need a server or its config

    try:
        client = kfp.Client(host=request["host"])
        with tempfile.TemporaryDirectory() as scratch:
            spec_path = os.path.join(scratch, "pipeline.yaml")
            with open(spec_path, "w") as out:
                yaml.safe_dump(job["pipelineSpec"], out)
            pipeline_id, version_id = _upload(client, spec_path, request["pipeline_name"])
        try:
            experiment = client.get_experiment(experiment_name=request["experiment"])
        except Exception:  # noqa: BLE001 - kfp raises a generic error for "not found"
            experiment = client.create_experiment(request["experiment"])
        run = client.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=request["job_name"],
            cron_expression=request["cron_expression"],
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=request["pipeline_root"],
        )
    except Exception as error:  # noqa: BLE001 - network/auth errors from kfp and urllib3
        raise ScheduleError(
            f"could not schedule on {request['host']}: {type(error).__name__}: {error}\n"
            "Check that --host is the KFP API endpoint (e.g. http://localhost:8080 after "
            "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`) and reachable."
        ) from error
    return run.recurring_run_id


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True, help="KFP API endpoint URL")
    parser.add_argument("--pipeline-file", required=True, help="from kubeflow_v2_runner.py")
    parser.add_argument("--cron", required=True, help='e.g. "0 3 * * *" (03:00 daily)')
    parser.add_argument("--experiment", help="default: the pipeline's name")
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        job = load_pipeline_job(args.pipeline_file)
        request = build_request(args, job)
        if args.dry_run:
            print(json.dumps({"dry_run": True, **request}, indent=2))
            return 0
        print(f"Scheduled recurring run {submit(request, job)}")
    except ScheduleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
