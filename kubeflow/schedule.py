"""Uploads a compiled pipeline and schedules recurring runs: open-source KFP or Vertex AI.

    # Open-source Kubeflow Pipelines (KFP v2 API server):
    python kubeflow/schedule.py --host https://KFP_HOST --pipeline-file mnist_pipeline.json \\
        --cron "0 3 * * *" [--experiment NAME] [--namespace NS] [--token-file PATH] [--dry-run]

    # Vertex AI Pipelines:
    python kubeflow/schedule.py --vertex-project PROJECT --region REGION \\
        --pipeline-file mnist_pipeline.json --cron "0 3 * * *" \\
        [--service-account SA_EMAIL] [--pipeline-root gs://...] [--dry-run]

Exactly one of --host and --vertex-project picks the route. --dry-run prints
what would be sent and contacts no server (no credentials needed); a token
file is still read, so a wrong path shows up, but the token is never printed.

Which form of the compiled file each route sends. kubeflow_v2_runner.py writes
a pipeline *job*, {"pipelineSpec": ..., "runtimeConfig": {"gcsOutputDirectory":
...}}, as JSON or YAML.

- Open-source KFP stores an uploaded file as a pipeline template, which must
  be a bare PipelineSpec (IR YAML): `kfp.Client.upload_pipeline` posts the file
  unchanged, the API server parses each YAML document of it as a PipelineSpec
  and refuses anything else as an "unknown template format" (the job wrapper
  has no field of a PipelineSpec), and some server versions take only
  `.yaml`/`.yml` names. So the job's `pipelineSpec` is uploaded alone, as
  `pipeline.yaml`, and its `gcsOutputDirectory` goes with the recurring run as
  its pipeline root (which the PipelineSpec does not carry).
- Vertex AI: `aiplatform.PipelineJob(template_path=...)` reads a PipelineJob or
  a PipelineSpec, so the compiled file is passed as it is.

Authentication to an open-source KFP server: the bearer token in --token-file,
else the in-cluster service-account token that KFP projects into pods
(`$KF_PIPELINES_SA_TOKEN_PATH`, default /var/run/secrets/kubeflow/pipelines/token,
the same file kfp.Client reads in a cluster when no host is given), else none
(e.g. a `kubectl port-forward` endpoint). --namespace puts the experiment and
its recurring run into that profile namespace of a multi-user KFP. Vertex AI
uses Application Default Credentials.
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import warnings

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

# The names kfp.client uses for the projected service-account token (kept here so
# that --dry-run needs no kfp.client import; a test checks they agree).
SA_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
DEFAULT_SA_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"


class ScheduleError(RuntimeError):
    """The pipeline file or the server is not usable; the message says why."""


def load_pipeline_job(path: str) -> dict:
    """Reads a compiled pipeline (JSON or YAML) and checks it is a KFP v2 spec.

    Args:
      path: the file written by kubeflow_v2_runner.py.

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


def _cron_fields(cron: str) -> tuple[str | None, list[str]]:
    """Splits an optional leading `TZ=...`/`CRON_TZ=...` from the cron fields."""
    tokens = cron.split()
    if tokens and tokens[0].startswith(("TZ=", "CRON_TZ=")):
        return tokens[0], tokens[1:]
    return None, tokens


def to_kfp_cron(cron: str) -> str:
    """KFP's scheduler wants 6 cron fields (seconds first); accepts 5 or 6."""
    time_zone, fields = _cron_fields(cron)
    if time_zone:
        raise ScheduleError(
            f"cron {cron!r}: a time-zone prefix is for --vertex-project only; "
            "KFP's cron takes no time zone"
        )
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return cron
    raise ScheduleError(f"cron {cron!r} must have 5 fields (min hour day month weekday) or 6")


def to_vertex_cron(cron: str) -> str:
    """Vertex AI wants standard 5-field cron, optionally after TZ=/CRON_TZ=."""
    _, fields = _cron_fields(cron)
    if len(fields) != 5:
        raise ScheduleError(
            f"cron {cron!r} must have 5 fields (min hour day month weekday) for Vertex AI, "
            'optionally after a time zone: "TZ=Europe/Berlin 0 3 * * *"'
        )
    return " ".join(cron.split())


def _pipeline_root(args: argparse.Namespace, job: dict) -> str | None:
    """--pipeline-root, else the compiled job's output directory."""
    return args.pipeline_root or job.get("runtimeConfig", {}).get("gcsOutputDirectory")


def build_kfp_request(args: argparse.Namespace, job: dict) -> dict:
    """What will be sent to an open-source KFP server (no secret in it).

    Args:
      args: parsed flags of the --host route.
      job: the compiled pipeline job from load_pipeline_job().

    Returns:
      host, namespace, auth source, pipeline name, experiment, recurring-run
      name, 6-field cron, pipeline root, service account, caching, tasks.
    """
    name = job["pipelineSpec"]["pipelineInfo"]["name"]
    return {
        "route": "kfp",
        "host": args.host,
        "namespace": args.namespace,
        "auth": args.token_source,
        "upload": "pipelineSpec only, as pipeline.yaml (IR YAML)",
        "pipeline_name": name,
        "experiment": args.experiment or name,
        "job_name": f"{name}-recurring",
        "cron_expression": to_kfp_cron(args.cron),
        "pipeline_root": _pipeline_root(args, job),
        "service_account": args.service_account,
        "enable_caching": args.caching,
        "tasks": sorted(job["pipelineSpec"]["root"]["dag"]["tasks"]),
    }


def build_vertex_request(args: argparse.Namespace, job: dict) -> dict:
    """What will be sent to Vertex AI: a PipelineJob and a schedule for it.

    Args:
      args: parsed flags of the --vertex-project route.
      job: the compiled pipeline job from load_pipeline_job().

    Returns:
      project, region, the PipelineJob's display name, template path, pipeline
      root and caching, and the schedule's display name, cron and service account.
    """
    name = job["pipelineSpec"]["pipelineInfo"]["name"]
    return {
        "route": "vertex",
        "project": args.vertex_project,
        "region": args.region,
        "display_name": name,
        "template_path": args.pipeline_file,
        "pipeline_root": _pipeline_root(args, job),
        "enable_caching": args.caching,
        "schedule_display_name": f"{name}-recurring",
        "cron": to_vertex_cron(args.cron),
        "service_account": args.service_account,
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


def submit_to_kfp(request: dict, job: dict, token: str | None) -> str:
    """Uploads the pipeline spec and creates the recurring run on KFP.

    Args:
      request: from build_kfp_request().
      job: the compiled pipeline job; its pipelineSpec is what is uploaded.
      token: bearer token for the API server, or None.

    Returns:
      The recurring run's id.

    Raises:
      ScheduleError: the server refused or could not be reached.
    """
    import kfp  # imported here: --dry-run must not need a server or its config

    client_args = {"host": request["host"], "existing_token": token}
    if request["namespace"]:
        client_args["namespace"] = request["namespace"]
    try:
        client = kfp.Client(**client_args)
        with tempfile.TemporaryDirectory() as scratch:
            spec_path = os.path.join(scratch, "pipeline.yaml")
            with open(spec_path, "w") as out:
                yaml.safe_dump(job["pipelineSpec"], out)
            pipeline_id, version_id = _upload(client, spec_path, request["pipeline_name"])
        try:
            experiment = client.get_experiment(
                experiment_name=request["experiment"], namespace=request["namespace"]
            )
        except ValueError:  # kfp's "No experiment is found with name ..."
            experiment = client.create_experiment(
                request["experiment"], namespace=request["namespace"]
            )
        run = client.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=request["job_name"],
            cron_expression=request["cron_expression"],
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=request["pipeline_root"],
            enable_caching=request["enable_caching"],
            service_account=request["service_account"],
        )
    except Exception as error:  # noqa: BLE001 - network/auth errors from kfp and urllib3
        raise ScheduleError(
            f"could not schedule on {request['host']}: {type(error).__name__}: {error}\n"
            "Check that --host is the KFP API endpoint (e.g. http://localhost:8080 after "
            "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`) and reachable, "
            "and on a multi-user KFP that --token-file and --namespace are right."
        ) from error
    return run.recurring_run_id


def submit_to_vertex(request: dict) -> str:
    """Creates a Vertex AI PipelineJob from the compiled file and a schedule for it.

    Args:
      request: from build_vertex_request().

    Returns:
      The schedule's resource name.

    Raises:
      ScheduleError: no credentials, or Vertex AI refused the request.
    """
    with warnings.catch_warnings():  # its Python-version notices are not about this run
        warnings.simplefilter("ignore", FutureWarning)
        from google.cloud import aiplatform

    try:
        pipeline_job = aiplatform.PipelineJob(
            display_name=request["display_name"],
            template_path=request["template_path"],
            pipeline_root=request["pipeline_root"],
            enable_caching=request["enable_caching"],
            project=request["project"],
            location=request["region"],
        )
        schedule = pipeline_job.create_schedule(
            cron=request["cron"],
            display_name=request["schedule_display_name"],
            service_account=request["service_account"],
        )
    except Exception as error:  # noqa: BLE001 - auth and API errors from google-cloud
        raise ScheduleError(
            f"could not schedule on Vertex AI (project {request['project']}, region "
            f"{request['region']}): {type(error).__name__}: {error}\n"
            "Check the credentials (`gcloud auth application-default login`, or "
            "GOOGLE_APPLICATION_CREDENTIALS), that the Vertex AI API is enabled in the "
            "project and that --region is a Vertex AI region such as us-central1."
        ) from error
    return schedule.resource_name


def _read_token(path: str) -> str:
    """The bearer token in a file, without surrounding whitespace."""
    with open(path) as source:
        token = source.read().strip()
    if not token:
        raise OSError("the file is empty")
    return token


def _resolve_kfp_token(
    parser: argparse.ArgumentParser, token_file: str | None
) -> tuple[str | None, str]:
    """(token, where it came from): --token-file, the in-cluster token, or none."""
    if token_file:
        try:
            return _read_token(token_file), f"token file {token_file}"
        except OSError as error:
            parser.error(f"argument --token-file: cannot read {token_file!r}: {error}")
    in_cluster_path = os.environ.get(SA_TOKEN_PATH_ENV) or DEFAULT_SA_TOKEN_PATH
    if os.path.isfile(in_cluster_path):
        try:
            return _read_token(in_cluster_path), f"in-cluster token {in_cluster_path}"
        except OSError as error:
            parser.error(f"cannot read the in-cluster token {in_cluster_path!r}: {error}")
    return None, "none"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the flags and checks they fit one route; reads the KFP token.

    Args:
      argv: command-line arguments (default: sys.argv[1:]).

    Returns:
      The flags, plus `token` and `token_source` for the --host route.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    route = parser.add_mutually_exclusive_group(required=True)
    route.add_argument("--host", help="open-source KFP: the API endpoint URL")
    route.add_argument("--vertex-project", help="Vertex AI: the Google Cloud project")
    parser.add_argument("--pipeline-file", required=True, help="from kubeflow_v2_runner.py")
    parser.add_argument("--cron", required=True, help='e.g. "0 3 * * *" (03:00 daily)')
    parser.add_argument("--pipeline-root", help="default: the one compiled into the file")
    parser.add_argument(
        "--service-account",
        help="runs' identity: a Kubernetes service account on KFP, an e-mail on Vertex AI",
    )
    parser.add_argument(
        "--caching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force step caching on or off (default: as compiled)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    kfp_flags = parser.add_argument_group("open-source KFP (--host)")
    kfp_flags.add_argument("--experiment", help="default: the pipeline's name")
    kfp_flags.add_argument("--namespace", help="multi-user KFP: the profile namespace")
    kfp_flags.add_argument(
        "--token-file",
        help=f"bearer token (default: ${SA_TOKEN_PATH_ENV} or {DEFAULT_SA_TOKEN_PATH} if present)",
    )
    vertex_flags = parser.add_argument_group("Vertex AI (--vertex-project)")
    vertex_flags.add_argument("--region", help="e.g. us-central1")
    args = parser.parse_args(argv)

    if args.vertex_project:
        if not args.region:
            parser.error("--region is required with --vertex-project (e.g. us-central1)")
        for flag in ("experiment", "namespace", "token_file"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag.replace('_', '-')} is for --host (open-source KFP) only")
        args.token, args.token_source = None, None
    else:
        if args.region is not None:
            parser.error("--region is for --vertex-project (Vertex AI) only")
        args.token, args.token_source = _resolve_kfp_token(parser, args.token_file)
    return args


def main(argv: list[str] | None = None) -> int:
    """Schedules the pipeline (or prints the request); returns the exit code."""
    args = parse_args(argv)
    try:
        job = load_pipeline_job(args.pipeline_file)
        if args.vertex_project:
            request = build_vertex_request(args, job)
        else:
            request = build_kfp_request(args, job)
        if args.dry_run:
            print(json.dumps({"dry_run": True, **request}, indent=2))
            return 0
        if args.vertex_project:
            print(f"Created Vertex AI pipeline schedule {submit_to_vertex(request)}")
        else:
            print(f"Scheduled recurring run {submit_to_kfp(request, job, args.token)}")
    except ScheduleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
