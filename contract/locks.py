"""Exclusive advisory locks on local files (`fcntl.flock`), freed by the kernel when holders die.

Two locks use it. The output directory's (`<output-dir>/.lock`): a local
run holds it for the whole run, so two runs never share one SQLite ML
Metadata store or push at once, and `prune` holds it so no run starts while
releases are being removed. The serving directory's
(`<serving-dir>/.rollback.lock`): rollback and prune hold it, so of two at
once one wins. The kernel drops a lock when the holding process exits for
any reason (even SIGKILL), so no holder leaves a stale lock behind. Readers
(lineage, report, list, verify) take no lock.
"""

import contextlib
import datetime
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from typing import IO

RUN_LOCK_FILE = ".lock"
"""The output directory's lock: one run (or prune) per output directory."""


class LockBusyError(RuntimeError):
    """Another live process holds the lock; the message says who and what to do."""


class OutputDirBusyError(LockBusyError):
    """Another live run (or prune) holds the output directory."""


@contextlib.contextmanager
def exclusive(
    lock_path: str,
    busy_message: str | Callable[[], str],
    error: type[LockBusyError] = LockBusyError,
) -> Iterator[IO[str]]:
    """Holds `lock_path` for the block; yields the open lock file (the holder may write it).

    Raises:
      LockBusyError (or `error`): another process holds it; the message is
        `busy_message` (called, when it is a function, once the lock is found busy).
    """
    os.makedirs(os.path.dirname(lock_path) or ".", exist_ok=True)
    handle = open(lock_path, "a+")  # noqa: SIM115 - closed below; closing releases the lock
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = busy_message() if callable(busy_message) else busy_message
            raise error(message) from None
        yield handle
    finally:
        handle.close()


def _holder(lock_path: str) -> str:
    try:
        with open(lock_path) as source:
            holder = json.load(source)
        return f"{holder.get('by', 'run')} (pid {holder['pid']}, started {holder['started']})"
    except (OSError, ValueError, KeyError, AttributeError):
        return "run (pid unknown)"


@contextlib.contextmanager
def hold_output_dir(output_dir: str, by: str = "run") -> Iterator[None]:
    """Holds `<output_dir>/.lock` for the block, recording this process as its holder.

    Args:
      output_dir: The pipeline's output directory (created if missing).
      by: What holds it, as the busy message names it: "run" or "prune".

    Raises:
      OutputDirBusyError: another process holds it; the message names it.
    """
    os.makedirs(output_dir, exist_ok=True)
    lock_path = os.path.join(output_dir, RUN_LOCK_FILE)

    def busy() -> str:
        return (
            f"another {_holder(lock_path)} is using {output_dir}; "
            "wait for it or pass another --output-dir"
        )

    with exclusive(lock_path, busy, OutputDirBusyError) as handle:
        started = datetime.datetime.now().astimezone()
        handle.seek(0)
        handle.truncate()
        json.dump(
            {"pid": os.getpid(), "started": started.isoformat(timespec="seconds"), "by": by}, handle
        )
        handle.flush()
        yield
