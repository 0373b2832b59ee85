"""`lineage --list`'s table: a pipeline column only when the runs are of several pipelines."""

from reporting import lineage


def _row(pipeline: str, run_id: str, pushed: str | None = None) -> dict:
    return {
        "pipeline": pipeline,
        "run_id": run_id,
        "time": "2026-12-04T05:00:00+00:00",
        "test_accuracy": 0.9812 if pushed else None,
        "blessed": True if pushed else None,
        "pushed": pushed,
        "reason": "" if pushed else "stopped: Trainer failed",
    }


def test_one_pipeline_has_no_pipeline_column():
    table = lineage.render_runs([_row("mnist", "run-1", "output/serving/mnist/1")])
    assert table.splitlines()[0].startswith("run ")
    assert "mnist " not in table.splitlines()[1].split("output/")[0]


def test_several_pipelines_each_row_names_its_own():
    rows = [_row("mnist-alice", "run-1", "a/serving/mnist/1"), _row("mnist-bob", "run-2")]
    header, alice, bob = lineage.render_runs(rows).splitlines()
    assert header.split()[:2] == ["pipeline", "run"]
    assert alice.split()[:4] == ["mnist-alice", "run-1", "0.9812", "yes"]
    assert bob.split()[:2] == ["mnist-bob", "run-2"]
    assert "not pushed: stopped: Trainer failed" in bob
