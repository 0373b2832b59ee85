"""The output-dir lock: a second run is refused at once; a killed holder frees it.

The two-run tests use real processes, as two `local_runner.py` runs would:
`fcntl.flock` is what the kernel arbitrates between them.
"""

import datetime
import json
import os
import signal
import subprocess
import sys

import pytest

from components.release import RUN_STARTED_ENV
from pipeline import run_lock
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS

HOLDER = """
import sys, time
from pipeline import run_lock
with run_lock.hold(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process that holds the lock of `tmp_path / "out"` until killed."""
    output_dir = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(output_dir)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process, output_dir
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


@pytest.fixture
def no_run_started_env(monkeypatch):
    monkeypatch.delenv(RUN_STARTED_ENV, raising=False)


def test_second_run_on_the_output_dir_stops_before_any_pipeline_work(holder, mnist_dir):
    process, output_dir = holder
    second = subprocess.run(
        [
            sys.executable,
            "local_runner.py",
            f"--output-dir={output_dir}",
            f"--mnist-dir={mnist_dir}",
            *SMALL_RUN_FLAGS,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a timing check
    )

    assert second.returncode == 1, second.stderr
    assert f"another run (pid {process.pid}, started " in second.stderr
    assert f"is using {output_dir}; wait for it or pass another --output-dir" in second.stderr
    assert sorted(os.listdir(output_dir)) == [run_lock.LOCK_FILE], "no pipeline work may start"
    assert process.poll() is None, "the first run is left alone"


def test_lock_is_free_again_after_the_holder_is_killed(holder, no_run_started_env):
    process, output_dir = holder
    with pytest.raises(run_lock.OutputDirBusyError, match=f"pid {process.pid}"):
        with run_lock.hold(str(output_dir)):
            pass

    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    with run_lock.hold(str(output_dir)):
        with open(output_dir / run_lock.LOCK_FILE) as source:
            assert json.load(source)["pid"] == os.getpid()


def test_lock_file_records_the_holders_pid_and_start_time(holder):
    process, output_dir = holder
    with open(output_dir / run_lock.LOCK_FILE) as source:
        record = json.load(source)
    assert record["pid"] == process.pid
    started = datetime.datetime.fromisoformat(record["started"])
    assert started.tzinfo is not None
    now = datetime.datetime.now().astimezone()
    assert started <= now
    assert now - started < datetime.timedelta(hours=1)


def test_run_started_env_is_set_inside_the_block_only(tmp_path, no_run_started_env):
    before = datetime.datetime.now().timestamp()
    with run_lock.hold(str(tmp_path)):
        started = float(os.environ[RUN_STARTED_ENV])
        with open(tmp_path / run_lock.LOCK_FILE) as source:
            record = json.load(source)
    assert RUN_STARTED_ENV not in os.environ
    assert int(before) <= started <= datetime.datetime.now().timestamp()
    assert record["started"] == (
        datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds")
    )


def test_run_started_env_is_removed_when_the_block_raises(tmp_path, no_run_started_env):
    with pytest.raises(KeyboardInterrupt):
        with run_lock.hold(str(tmp_path)):
            assert RUN_STARTED_ENV in os.environ
            raise KeyboardInterrupt
    assert RUN_STARTED_ENV not in os.environ
    with run_lock.hold(str(tmp_path)):  # and the lock was released
        pass


def test_a_second_hold_in_one_process_is_refused_too(tmp_path, no_run_started_env):
    with run_lock.hold(str(tmp_path)):
        with pytest.raises(run_lock.OutputDirBusyError) as raised:
            with run_lock.hold(str(tmp_path)):
                pass
        assert f"another run (pid {os.getpid()}, started " in str(raised.value)
