"""A local Beam portable runner: job service and external worker pool as processes.

This is the path a Flink or Spark job server takes, with Beam's own local job
service standing in for the cluster: the pipeline is submitted over the Job
API, and its bundles run in SDK worker processes that a separate worker pool
starts (`--environment_type=EXTERNAL`), not in the submitting process. Nothing
a worker needs can come from the submitting process's memory, so what works
here needs no in-process state.
"""

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent

STARTUP_TIMEOUT_S = 60.0
"""How long the two services may take to listen (each imports Beam: ~3 s here)."""

_STOP_TIMEOUT_S = 10.0
_WORKER_STARTED = "Starting worker with command"


@dataclasses.dataclass(frozen=True)
class PortableBeam:
    """A running local job service and worker pool."""

    beam_args: list[str]
    """Pipeline args that submit to the job service, with the pool's workers."""
    worker_pool_log: pathlib.Path

    def workers_started(self) -> int:
        """How many SDK worker processes the pool has started (one per job here)."""
        return self.worker_pool_log.read_text(errors="replace").count(_WORKER_STARTED)


def free_port() -> int:
    """Returns a TCP port that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def worker_environment() -> dict[str, str]:
    """The environment the services and the SDK workers they start run with.

    The worker pool starts each SDK worker as `python` from PATH, so this
    virtualenv's bin comes first; the project must import in the workers (its
    `contract` package sets the Keras environment there too).
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if path
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _log_tail(path: pathlib.Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_listening(
    process: subprocess.Popen, port: int, name: str, log: pathlib.Path
) -> None:
    """Waits for `port` to accept connections; fails clearly if it never does."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {process.returncode} before listening on "
                f"port {port}; last lines of {log}:\n{_log_tail(log)}"
            )
        try:
            with socket.create_connection(("localhost", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(
        f"{name} did not listen on port {port} within {STARTUP_TIMEOUT_S:.0f} s; "
        f"last lines of {log}:\n{_log_tail(log)}"
    )


def _stop(process: subprocess.Popen) -> None:
    """Ends the process and its children (its own process group)."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def local_portable_runner(work_dir: str) -> Iterator[PortableBeam]:
    """Starts a Beam job service and an external worker pool; stops both on exit.

    Args:
      work_dir: Where the services keep their logs and staged artifacts.

    Yields:
      The services: Beam pipeline args that submit to the job service and run
      every bundle in worker processes of the pool, and the pool's log.
    """
    work = pathlib.Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    job_port, pool_port = free_port(), free_port()
    services = {
        "job service": (
            job_port,
            [
                "apache_beam.runners.portability.local_job_service_main",
                f"--port={job_port}",
                f"--staging_dir={work / 'staging'}",
            ],
        ),
        "worker pool": (
            pool_port,
            ["apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}"],
        ),
    }
    logs = {name: work / f"{name.replace(' ', '_')}.log" for name in services}
    env = worker_environment()
    processes: list[subprocess.Popen] = []
    try:
        for name, (port, args) in services.items():
            log = logs[name]
            with open(log, "wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", *args],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=str(PROJECT_ROOT),
                    start_new_session=True,
                )
            processes.append(process)
            _wait_until_listening(process, port, name, log)
        yield PortableBeam(
            beam_args=[
                "--runner=PortableRunner",
                f"--job_endpoint=localhost:{job_port}",
                "--environment_type=EXTERNAL",
                f"--environment_config=localhost:{pool_port}",
            ],
            worker_pool_log=logs["worker pool"],
        )
    finally:
        for process in reversed(processes):
            _stop(process)
