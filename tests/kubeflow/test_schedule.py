"""kubeflow/schedule.py: dry runs, clear errors and what reaches the clients, without a server.

Tests with `fake` in the name replace kfp.Client or aiplatform.PipelineJob by a
recording stand-in; nothing here talks to a KFP server or to Google Cloud.
"""

import json
import os

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2


@pytest.fixture(autouse=True)
def no_in_cluster_token(tmp_path, monkeypatch):
    """Tests see no in-cluster KFP token unless they provide one."""
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "no-such-token"))


def _kfp_args(compiled_file, *extra):
    return [
        "--host=http://127.0.0.1:9",
        f"--pipeline-file={compiled_file}",
        "--cron=0 3 * * *",
        *extra,
    ]


def _vertex_args(compiled_file, *extra):
    return [
        "--vertex-project=my-project",
        "--region=europe-west4",
        f"--pipeline-file={compiled_file}",
        "--cron=0 3 * * *",
        *extra,
    ]


def _argparse_error(schedule, argv, capsys) -> str:
    """Runs main, expects argparse's exit 2, returns the one `error:` line."""
    with pytest.raises(SystemExit) as exit_info:
        schedule.main(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, error_lines
    return error_lines[0]


class _ServerMustNotBeContacted:
    def __init__(self, *args, **kwargs):
        raise AssertionError("a dry run must not build a client")


# ---- open-source KFP route -------------------------------------------------------------


def test_kfp_dry_run_with_fake_client_prints_the_request_and_sends_nothing(
    schedule, compiled_file, capsys, monkeypatch
):
    import kfp

    monkeypatch.setattr(kfp, "Client", _ServerMustNotBeContacted)
    exit_code = schedule.main(
        _kfp_args(compiled_file, "--experiment=nightly", "--namespace=team-a", "--dry-run")
    )
    assert exit_code == 0
    request = json.loads(capsys.readouterr().out)
    assert request["dry_run"] is True
    assert request["route"] == "kfp"
    assert request["host"] == "http://127.0.0.1:9"
    assert request["namespace"] == "team-a"
    assert request["auth"] == "none"
    assert request["pipeline_name"] == "mnist"
    assert request["experiment"] == "nightly"
    assert request["cron_expression"] == "0 0 3 * * *"
    assert request["pipeline_root"] == "gs://bucket/mnist/pipeline_root"
    assert request["enable_caching"] is None
    assert "Trainer" in request["tasks"]


def test_kfp_dry_run_names_the_token_file_but_never_prints_the_token(
    schedule, compiled_file, tmp_path, capsys
):
    token_file = tmp_path / "token"
    token_file.write_text("secret-token\n")
    assert schedule.main(_kfp_args(compiled_file, f"--token-file={token_file}", "--dry-run")) == 0
    output = capsys.readouterr().out
    assert json.loads(output)["auth"] == f"token file {token_file}"
    assert "secret-token" not in output


def test_the_token_path_names_agree_with_kfp_client(schedule):
    from kfp import client

    assert schedule.SA_TOKEN_PATH_ENV == client.KF_PIPELINES_SA_TOKEN_ENV
    assert schedule.DEFAULT_SA_TOKEN_PATH == client.KF_PIPELINES_SA_TOKEN_PATH


def test_a_file_that_is_not_a_pipeline_is_refused(schedule, tmp_path, capsys):
    not_a_pipeline = tmp_path / "notes.json"
    not_a_pipeline.write_text('{"hello": "world"}')
    assert schedule.main(_kfp_args(not_a_pipeline)) == 1
    assert "not a KFP v2 pipeline spec" in capsys.readouterr().err


def test_an_unreachable_host_is_a_clear_error(schedule, compiled_file, capsys):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    exit_code = schedule.main(_kfp_args(compiled_file))
    assert exit_code == 1
    error = capsys.readouterr().err
    assert "could not schedule on http://127.0.0.1:9" in error
    assert "--host" in error


def test_bad_cron_is_refused(schedule, compiled_file, capsys):
    argv = ["--host=http://h", f"--pipeline-file={compiled_file}", "--cron=every day", "--dry-run"]
    assert schedule.main(argv) == 1
    assert "cron" in capsys.readouterr().err


def test_a_time_zone_prefix_is_refused_on_kfp(schedule, compiled_file, capsys):
    argv = _kfp_args(compiled_file, "--dry-run")
    argv[2] = "--cron=TZ=Europe/Berlin 0 3 * * *"
    assert schedule.main(argv) == 1
    assert "time-zone prefix is for --vertex-project only" in capsys.readouterr().err


class _FakeKfpClient:
    """Stands in for kfp.Client (no server here); records what it is given."""

    instances = []

    def __init__(self, existing_pipeline_id=None, **client_args):
        self.existing_pipeline_id = existing_pipeline_id
        self.client_args = client_args
        self.calls = []
        self.uploaded = {}
        _FakeKfpClient.instances.append(self)

    def get_pipeline_id(self, name):
        return self.existing_pipeline_id

    def upload_pipeline(self, path, pipeline_name):
        self.calls.append(("upload_pipeline", pipeline_name))
        if os.path.exists(path):  # keep the text: the temp file is gone after the upload
            with open(path) as uploaded:
                self.uploaded[path] = uploaded.read()
        return type("Pipeline", (), {"pipeline_id": "new-id"})()

    def list_pipeline_versions(self, pipeline_id):
        version = type("Version", (), {"pipeline_version_id": "v1"})()
        return type("Versions", (), {"pipeline_versions": [version]})()

    def upload_pipeline_version(self, path, pipeline_version_name, pipeline_id):
        self.calls.append(("upload_pipeline_version", pipeline_id))
        return type("Version", (), {"pipeline_version_id": "v2"})()

    def get_experiment(self, experiment_name, namespace=None):
        self.calls.append(("get_experiment", experiment_name, namespace))
        raise ValueError(f"No experiment is found with name {experiment_name}.")

    def create_experiment(self, name, namespace=None):
        self.calls.append(("create_experiment", name, namespace))
        return type("Experiment", (), {"experiment_id": "exp-1"})()

    def create_recurring_run(self, **run_args):
        self.calls.append(("create_recurring_run", run_args))
        return type("RecurringRun", (), {"recurring_run_id": "rr-1"})()


@pytest.fixture
def fake_kfp_client(monkeypatch):
    import kfp

    _FakeKfpClient.instances = []
    monkeypatch.setattr(kfp, "Client", _FakeKfpClient)
    return _FakeKfpClient


def test_upload_with_fake_client_adds_a_version_when_the_pipeline_exists(schedule):
    client = _FakeKfpClient(existing_pipeline_id="known-id")
    assert schedule._upload(client, "spec.yaml", "mnist") == ("known-id", "v2")
    assert client.calls == [("upload_pipeline_version", "known-id")]


def test_upload_with_fake_client_creates_a_new_pipeline(schedule):
    client = _FakeKfpClient(existing_pipeline_id=None)
    assert schedule._upload(client, "spec.yaml", "mnist") == ("new-id", "v1")
    assert client.calls == [("upload_pipeline", "mnist")]


def test_token_file_and_namespace_reach_the_fake_client(
    schedule, compiled_file, tmp_path, capsys, fake_kfp_client
):
    token_file = tmp_path / "token"
    token_file.write_text("  secret-token\n")
    exit_code = schedule.main(
        _kfp_args(compiled_file, f"--token-file={token_file}", "--namespace=team-a")
    )
    assert exit_code == 0, capsys.readouterr().err
    assert "Scheduled recurring run rr-1" in capsys.readouterr().out
    (client,) = fake_kfp_client.instances
    assert client.client_args == {
        "host": "http://127.0.0.1:9",
        "existing_token": "secret-token",
        "namespace": "team-a",
    }
    assert ("get_experiment", "mnist", "team-a") in client.calls
    assert ("create_experiment", "mnist", "team-a") in client.calls
    (run_args,) = [call[1] for call in client.calls if call[0] == "create_recurring_run"]
    assert run_args["experiment_id"] == "exp-1"
    assert run_args["cron_expression"] == "0 0 3 * * *"
    assert (run_args["pipeline_id"], run_args["version_id"]) == ("new-id", "v1")
    assert run_args["pipeline_root"] == "gs://bucket/mnist/pipeline_root"


def test_fake_client_receives_a_bare_pipeline_spec_as_yaml(
    schedule, compiled_file, capsys, fake_kfp_client
):
    assert schedule.main(_kfp_args(compiled_file)) == 0, capsys.readouterr().err
    (client,) = fake_kfp_client.instances
    ((path, text),) = client.uploaded.items()
    assert path.endswith(".yaml")
    # Parsed strictly, as the KFP API server does: a job wrapper would fail here.
    spec = json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "mnist"
    assert "Trainer" in spec.root.dag.tasks


def test_in_cluster_token_reaches_the_fake_client_without_token_file(
    schedule, compiled_file, tmp_path, monkeypatch, capsys, fake_kfp_client
):
    in_cluster_token = tmp_path / "sa-token"
    in_cluster_token.write_text("projected-token")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(in_cluster_token))
    assert schedule.main(_kfp_args(compiled_file)) == 0, capsys.readouterr().err
    (client,) = fake_kfp_client.instances
    assert client.client_args == {"host": "http://127.0.0.1:9", "existing_token": "projected-token"}


def test_no_token_anywhere_gives_the_fake_client_none(
    schedule, compiled_file, capsys, fake_kfp_client
):
    assert schedule.main(_kfp_args(compiled_file, "--no-caching")) == 0, capsys.readouterr().err
    (client,) = fake_kfp_client.instances
    assert client.client_args == {"host": "http://127.0.0.1:9", "existing_token": None}
    (run_args,) = [call[1] for call in client.calls if call[0] == "create_recurring_run"]
    assert run_args["enable_caching"] is False


# ---- Vertex AI route ------------------------------------------------------------------


class _FakePipelineJob:
    """Stands in for aiplatform.PipelineJob (no Google Cloud here)."""

    instances = []

    def __init__(self, **job_args):
        self.job_args = job_args
        self.schedule_args = None
        _FakePipelineJob.instances.append(self)

    def create_schedule(self, **schedule_args):
        self.schedule_args = schedule_args
        name = "projects/my-project/locations/europe-west4/schedules/123"
        return type("PipelineJobSchedule", (), {"resource_name": name})()


@pytest.fixture
def aiplatform():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from google.cloud import aiplatform
    return aiplatform


def test_vertex_dry_run_with_fake_job_prints_the_request_and_sends_nothing(
    schedule, compiled_file, capsys, monkeypatch, aiplatform
):
    monkeypatch.setattr(aiplatform, "PipelineJob", _ServerMustNotBeContacted)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    exit_code = schedule.main(
        _vertex_args(compiled_file, "--service-account=runner@my-project.iam.gserviceaccount.com")
        + ["--dry-run"]
    )
    assert exit_code == 0
    request = json.loads(capsys.readouterr().out)
    assert request == {
        "dry_run": True,
        "route": "vertex",
        "project": "my-project",
        "region": "europe-west4",
        "display_name": "mnist",
        "template_path": str(compiled_file),
        "pipeline_root": "gs://bucket/mnist/pipeline_root",
        "enable_caching": None,
        "schedule_display_name": "mnist-recurring",
        "cron": "0 3 * * *",
        "service_account": "runner@my-project.iam.gserviceaccount.com",
        "tasks": request["tasks"],
    }
    assert "Trainer" in request["tasks"]


def test_vertex_dry_run_takes_pipeline_root_and_time_zone(schedule, compiled_file, capsys):
    argv = _vertex_args(compiled_file, "--pipeline-root=gs://other/root", "--dry-run")
    argv[3] = "--cron=TZ=Europe/Berlin 0 3 * * *"
    assert schedule.main(argv) == 0
    request = json.loads(capsys.readouterr().out)
    assert request["pipeline_root"] == "gs://other/root"
    assert request["cron"] == "TZ=Europe/Berlin 0 3 * * *"
    assert request["service_account"] is None


def test_vertex_refuses_six_field_cron(schedule, compiled_file, capsys):
    argv = _vertex_args(compiled_file, "--dry-run")
    argv[3] = "--cron=0 0 3 * * *"
    assert schedule.main(argv) == 1
    assert "must have 5 fields" in capsys.readouterr().err


def test_vertex_route_with_fake_pipeline_job_creates_the_schedule(
    schedule, compiled_file, capsys, monkeypatch, aiplatform
):
    _FakePipelineJob.instances = []
    monkeypatch.setattr(aiplatform, "PipelineJob", _FakePipelineJob)
    exit_code = schedule.main(
        _vertex_args(
            compiled_file,
            "--service-account=runner@my-project.iam.gserviceaccount.com",
            "--caching",
        )
    )
    assert exit_code == 0, capsys.readouterr().err
    assert "schedules/123" in capsys.readouterr().out
    (job,) = _FakePipelineJob.instances
    assert job.job_args == {
        "display_name": "mnist",
        "template_path": str(compiled_file),
        "pipeline_root": "gs://bucket/mnist/pipeline_root",
        "enable_caching": True,
        "project": "my-project",
        "location": "europe-west4",
    }
    assert job.schedule_args == {
        "cron": "0 3 * * *",
        "display_name": "mnist-recurring",
        "service_account": "runner@my-project.iam.gserviceaccount.com",
    }


def test_vertex_errors_from_fake_job_are_clear(
    schedule, compiled_file, capsys, monkeypatch, aiplatform
):
    class _NoCredentials:
        def __init__(self, **job_args):
            raise RuntimeError("Your default credentials were not found.")

    monkeypatch.setattr(aiplatform, "PipelineJob", _NoCredentials)
    assert schedule.main(_vertex_args(compiled_file)) == 1
    error = capsys.readouterr().err
    assert "could not schedule on Vertex AI (project my-project, region europe-west4)" in error
    assert "gcloud auth application-default login" in error


# ---- flag errors: one argparse line each ----------------------------------------------


def test_both_routes_is_an_argparse_error(schedule, compiled_file, capsys):
    line = _argparse_error(
        schedule, _kfp_args(compiled_file, "--vertex-project=p", "--region=r"), capsys
    )
    assert "not allowed with argument" in line


def test_no_route_is_an_argparse_error(schedule, compiled_file, capsys):
    line = _argparse_error(
        schedule, [f"--pipeline-file={compiled_file}", "--cron=0 3 * * *"], capsys
    )
    assert "one of the arguments --host --vertex-project is required" in line


def test_vertex_without_region_is_an_argparse_error(schedule, compiled_file, capsys):
    argv = [arg for arg in _vertex_args(compiled_file) if not arg.startswith("--region")]
    line = _argparse_error(schedule, argv, capsys)
    assert "--region is required with --vertex-project" in line


def test_kfp_flags_on_vertex_are_an_argparse_error(schedule, compiled_file, capsys):
    line = _argparse_error(schedule, _vertex_args(compiled_file, "--namespace=team-a"), capsys)
    assert "--namespace is for --host (open-source KFP) only" in line


def test_region_on_kfp_is_an_argparse_error(schedule, compiled_file, capsys):
    line = _argparse_error(schedule, _kfp_args(compiled_file, "--region=us-central1"), capsys)
    assert "--region is for --vertex-project (Vertex AI) only" in line


def test_missing_token_file_is_an_argparse_error(schedule, compiled_file, tmp_path, capsys):
    missing = tmp_path / "no-token"
    line = _argparse_error(
        schedule, _kfp_args(compiled_file, f"--token-file={missing}", "--dry-run"), capsys
    )
    assert f"argument --token-file: cannot read '{missing}'" in line
    assert "No such file or directory" in line


def test_empty_token_file_is_an_argparse_error(schedule, compiled_file, tmp_path, capsys):
    empty = tmp_path / "token"
    empty.write_text("\n")
    line = _argparse_error(schedule, _kfp_args(compiled_file, f"--token-file={empty}"), capsys)
    assert "the file is empty" in line
