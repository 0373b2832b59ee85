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


def test_lock_is_free_again_after_the_holder_is_killed(holder):
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


def test_holding_the_lock_changes_no_environment_a_component_could_read(tmp_path):
    # Components see only what TFX hands them; the lock tells them nothing.
    before = dict(os.environ)
    with run_lock.hold(str(tmp_path)):
        assert dict(os.environ) == before
    assert dict(os.environ) == before


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with run_lock.hold(str(tmp_path)):
            raise KeyboardInterrupt
    with run_lock.hold(str(tmp_path)):  # and the lock was released
        pass


def test_a_second_hold_in_one_process_is_refused_too(tmp_path):
    with run_lock.hold(str(tmp_path)):
        with pytest.raises(run_lock.OutputDirBusyError) as raised:
            with run_lock.hold(str(tmp_path)):
                pass
        assert f"another run (pid {os.getpid()}, started " in str(raised.value)
