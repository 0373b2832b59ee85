"""Named fault-injection points, so tests can kill a real run where it hurts most.

A point fires only when the environment variable FAULT_ENV names it; in a
normal run every call here is a dictionary look-up and nothing else. Tests
start the real pipeline in a subprocess with the variable set, so the kill is
a real SIGKILL of the process that holds the run, not a mock.
"""

import os
import signal
import sys
import time

FAULT_ENV = "MNIST_PIPELINE_FAULT"

RELEASE_AFTER_RENAME = "release-after-rename"
"""The release directory is in place, ML Metadata does not know it yet."""

RELEASE_MID_COPY = "release-mid-copy"
"""The staged release has its variables but no saved_model.pb yet."""

PAUSED_MESSAGE = "fault injection: paused at"


def inject(point: str) -> None:
    """Kills this process with SIGKILL if FAULT_ENV names `point`."""
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def pause(point: str) -> None:
    """Stops here for good if FAULT_ENV names `point`, so a test can kill the process.

    Prints `PAUSED_MESSAGE <point>` to stderr first, for the test to wait on.
    """
    if os.environ.get(FAULT_ENV) == point:
        print(f"{PAUSED_MESSAGE} {point}", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)
