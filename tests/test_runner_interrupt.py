"""A Ctrl-C the run's libraries swallow still stops it at the next component (no pipeline run).

The e2e side (a real SIGINT into a running pipeline exits 130 and says a
rerun resumes) is tests/test_faults.py.
"""

import logging
import os
import signal

import pytest

import local_runner
from contract import tfx_internals


def _record(message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 1, message, args, None)


def test_sigint_raises_at_once_and_again_at_the_next_component_if_swallowed():
    guard = local_runner.InterruptGuard()
    with guard.installed():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert guard.interrupted
        assert guard in logging.getLogger().handlers
        guard.handle(_record("Epoch %d/40", 2))  # not a component boundary: no raise
        with pytest.raises(KeyboardInterrupt):  # as LocalDagRunner logs it at the next node
            guard.handle(_record(tfx_internals.LOCAL_DAG_RUNNER_STARTED, "Transform"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "handler restored"
    assert guard not in logging.getLogger().handlers


def test_without_a_sigint_component_records_pass_through():
    guard = local_runner.InterruptGuard()
    with guard.installed():
        guard.handle(_record(tfx_internals.LOCAL_DAG_RUNNER_FINISHED, "Trainer"))
        guard.handle(_record(tfx_internals.LOCAL_DAG_RUNNER_STARTED, "Pusher"))
    assert not guard.interrupted
