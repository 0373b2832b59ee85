"""One run per output directory: an exclusive lock the kernel releases when the holder dies.

Two runs on one `--output-dir` would both write the SQLite ML Metadata store,
both push, and each could print the other's summary. The runner takes
`fcntl.flock` on `<output-dir>/.lock` for the whole run; a second run fails
at once, naming the holder. The kernel drops the lock when the holding
process exits for any reason (even SIGKILL), so a killed run never leaves a
stale lock behind. Readers (lineage, report) take no lock.

While it holds the lock, the runner clears the serving directory's staging
area (`contract.releases.remove_staged`): no other run can be pushing into it,
so whatever is staged there belongs to a run that is gone.
"""

import contextlib
import datetime
import fcntl
import json
import os
from collections.abc import Iterator

LOCK_FILE = ".lock"


class OutputDirBusyError(RuntimeError):
    """Another live run holds the output directory."""


def _holder(lock_path: str) -> str:
    try:
        with open(lock_path) as source:
            holder = json.load(source)
        return f"pid {holder['pid']}, started {holder['started']}"
    except (OSError, ValueError, KeyError):
        return "pid unknown"


@contextlib.contextmanager
def hold(output_dir: str) -> Iterator[None]:
    """Holds the output directory's lock for the duration of the block.

    Raises:
      OutputDirBusyError: another process holds it; the message names it.
    """
    os.makedirs(output_dir, exist_ok=True)
    lock_path = os.path.join(output_dir, LOCK_FILE)
    handle = open(lock_path, "a+")  # noqa: SIM115 - closed below; closing releases the lock
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputDirBusyError(
                f"another run ({_holder(lock_path)}) is using {output_dir}; "
                "wait for it or pass another --output-dir"
            ) from None
        started = datetime.datetime.now().astimezone()
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "started": started.isoformat(timespec="seconds")}, handle)
        handle.flush()
        yield
    finally:
        handle.close()
