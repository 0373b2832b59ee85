"""kubeflow/schedule.py: dry run and clear errors, without a KFP server."""

import json


def test_dry_run_prints_the_request_and_sends_nothing(schedule, compiled_file, capsys):
    exit_code = schedule.main(
        [
            "--host=http://127.0.0.1:9",
            f"--pipeline-file={compiled_file}",
            "--cron=0 3 * * *",
            "--experiment=nightly",
            "--dry-run",
        ]
    )
    assert exit_code == 0
    request = json.loads(capsys.readouterr().out)
    assert request["dry_run"] is True
    assert request["pipeline_name"] == "mnist"
    assert request["experiment"] == "nightly"
    assert request["cron_expression"] == "0 0 3 * * *"
    assert request["pipeline_root"] == "gs://bucket/mnist/pipeline_root"
    assert "Trainer" in request["tasks"]


def test_a_file_that_is_not_a_pipeline_is_refused(schedule, tmp_path, capsys):
    not_a_pipeline = tmp_path / "notes.json"
    not_a_pipeline.write_text('{"hello": "world"}')
    assert (
        schedule.main(
            ["--host=http://127.0.0.1:9", f"--pipeline-file={not_a_pipeline}", "--cron=0 3 * * *"]
        )
        == 1
    )
    assert "not a KFP v2 pipeline spec" in capsys.readouterr().err


def test_an_unreachable_host_is_a_clear_error(schedule, compiled_file, capsys):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    exit_code = schedule.main(
        ["--host=http://127.0.0.1:9", f"--pipeline-file={compiled_file}", "--cron=0 3 * * *"]
    )
    assert exit_code == 1
    error = capsys.readouterr().err
    assert "could not schedule on http://127.0.0.1:9" in error
    assert "--host" in error


def test_bad_cron_is_refused(schedule, compiled_file, capsys):
    assert (
        schedule.main(
            ["--host=http://h", f"--pipeline-file={compiled_file}", "--cron=every day", "--dry-run"]
        )
        == 1
    )
    assert "cron" in capsys.readouterr().err


class _FakeKfpClient:
    """Stands in for kfp.Client in this unit test only (no server here)."""

    def __init__(self, existing_pipeline_id):
        self.existing_pipeline_id = existing_pipeline_id
        self.calls = []

    def get_pipeline_id(self, name):
        return self.existing_pipeline_id

    def upload_pipeline(self, path, pipeline_name):
        self.calls.append(("upload_pipeline", pipeline_name))
        return type("Pipeline", (), {"pipeline_id": "new-id"})()

    def list_pipeline_versions(self, pipeline_id):
        version = type("Version", (), {"pipeline_version_id": "v1"})()
        return type("Versions", (), {"pipeline_versions": [version]})()

    def upload_pipeline_version(self, path, pipeline_version_name, pipeline_id):
        self.calls.append(("upload_pipeline_version", pipeline_id))
        return type("Version", (), {"pipeline_version_id": "v2"})()


def test_upload_with_fake_client_adds_a_version_when_the_pipeline_exists(schedule):
    client = _FakeKfpClient(existing_pipeline_id="known-id")
    assert schedule._upload(client, "spec.yaml", "mnist") == ("known-id", "v2")
    assert client.calls == [("upload_pipeline_version", "known-id")]


def test_upload_with_fake_client_creates_a_new_pipeline(schedule):
    client = _FakeKfpClient(existing_pipeline_id=None)
    assert schedule._upload(client, "spec.yaml", "mnist") == ("new-id", "v1")
    assert client.calls == [("upload_pipeline", "mnist")]
