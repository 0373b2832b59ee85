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

from contract import locks
from tests.conftest import PROJECT_ROOT, SMALL_RUN_FLAGS


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
    assert sorted(os.listdir(output_dir)) == [locks.RUN_LOCK_FILE], "no pipeline work may start"
    assert process.poll() is None, "the first run is left alone"


def test_lock_is_free_again_after_the_holder_is_killed(holder):
    process, output_dir = holder
    with pytest.raises(locks.OutputDirBusyError, match=f"pid {process.pid}"):
        with locks.hold_output_dir(str(output_dir)):
            pass

    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    with locks.hold_output_dir(str(output_dir)):
        with open(output_dir / locks.RUN_LOCK_FILE) as source:
            assert json.load(source)["pid"] == os.getpid()


def test_lock_file_records_the_holders_pid_and_start_time(holder):
    process, output_dir = holder
    with open(output_dir / locks.RUN_LOCK_FILE) as source:
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
    with locks.hold_output_dir(str(tmp_path)):
        assert dict(os.environ) == before
    assert dict(os.environ) == before


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with locks.hold_output_dir(str(tmp_path)):
            raise KeyboardInterrupt
    with locks.hold_output_dir(str(tmp_path)):  # and the lock was released
        pass


def test_a_second_hold_in_one_process_is_refused_too(tmp_path):
    with locks.hold_output_dir(str(tmp_path)):
        with pytest.raises(locks.OutputDirBusyError) as raised:
            with locks.hold_output_dir(str(tmp_path)):
                pass
        assert f"another run (pid {os.getpid()}, started " in str(raised.value)
