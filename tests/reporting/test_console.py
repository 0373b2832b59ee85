"""RunConsole, ProgressHandler and the log plumbing, on hand-made log records (fast)."""

import io
import logging
import os
import re
import subprocess
import sys

import pytest

from contract import tfx_internals
from reporting import console as run_console


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _console(is_terminal: bool = False):
    streams = run_console.TerminalStreams(out=io.StringIO(), err=io.StringIO())
    return run_console.RunConsole(streams, is_terminal=is_terminal), streams


def _epoch(epoch: int, max_epochs: int) -> dict:
    return {
        "epoch": epoch,
        "max_epochs": max_epochs,
        "loss": 0.5,
        "accuracy": 0.9,
        "eval_loss": 0.4,
        "eval_accuracy": 0.95,
        "learning_rate": 1e-3,
        "seconds": 1.0,
    }


def _record(logger: str, msg: str, *args, **extra) -> logging.LogRecord:
    record = logging.getLogger(logger).makeRecord(
        logger, logging.INFO, __file__, 1, msg, args, None, extra=extra or None
    )
    return record


def test_component_lines_come_from_the_runner_records_with_the_state_asked_for():
    console, streams = _console()
    states = {"Trainer": "executed", "Transform": "cached"}
    handler = run_console.ProgressHandler(console, states.get)
    for node in ("Transform", "Trainer"):
        handler.emit(_record("absl", tfx_internals.LOCAL_DAG_RUNNER_STARTED, node))
        handler.emit(_record("absl", tfx_internals.LOCAL_DAG_RUNNER_FINISHED, node))
    handler.emit(_record("absl", "Some other line about %s.", "Trainer"))
    lines = streams.out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["Transform", "running"],
        ["Transform", "cached"],
        ["Trainer", "running"],
        ["Trainer", "executed"],
    ]
    assert lines[-1].endswith(" s")


def test_without_a_terminal_about_ten_epoch_lines_and_always_the_last():
    console, streams = _console(is_terminal=False)
    handler = run_console.ProgressHandler(console, lambda node: "executed")
    handler.emit(_record("absl", tfx_internals.LOCAL_DAG_RUNNER_STARTED, "Trainer"))
    for epoch in range(1, 38):  # early stopping at 37 of 60
        handler.emit(_record("mnist.training", "epoch", training_epoch=_epoch(epoch, 60)))
    handler.emit(_record("absl", tfx_internals.LOCAL_DAG_RUNNER_FINISHED, "Trainer"))
    epochs = [line.split()[1] for line in streams.out.getvalue().splitlines() if "epoch" in line]
    assert epochs == ["1/60", "6/60", "12/60", "18/60", "24/60", "30/60", "36/60", "37/60"]
    assert "\x1b[" not in streams.out.getvalue(), "no cursor or colour codes off a terminal"


def test_on_a_terminal_the_epochs_are_one_progress_bar():
    streams = run_console.TerminalStreams(out=_Tty(), err=_Tty())
    console = run_console.RunConsole(streams)
    assert console.is_terminal
    for epoch in range(1, 21):
        console.epoch(_epoch(epoch, 20))
    console.component_finished("Trainer", "executed")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", streams.out.getvalue())
    assert "20/20" in text and "acc 0.9500" in text
    assert text.count("Trainer") == 1


def test_a_failed_component_is_marked_failed():
    console, streams = _console()
    console.component_started("AnomalyGate")
    console.component_failed()
    assert streams.out.getvalue().split()[-4:-2] == ["AnomalyGate", "failed"]


def test_a_broken_state_lookup_does_not_stop_the_run():
    console, streams = _console()

    def broken(node: str) -> str:
        raise RuntimeError("store locked")

    handler = run_console.ProgressHandler(console, broken)
    handler.emit(_record("absl", tfx_internals.LOCAL_DAG_RUNNER_STARTED, "Pusher"))
    # Must not raise:
    handler.emit(_record("absl", tfx_internals.LOCAL_DAG_RUNNER_FINISHED, "Pusher"))


def test_logging_to_replaces_and_restores_the_root_handlers():
    root = logging.getLogger()
    before = list(root.handlers)
    stream = io.StringIO()
    with run_console.logging_to([run_console.log_file_handler(stream)]):
        assert [type(h) for h in root.handlers] == [logging.StreamHandler]
        logging.getLogger("absl").info("Component %s is running.", "X")
    assert root.handlers == before
    assert "INFO absl: Component X is running." in stream.getvalue()


def test_output_to_log_catches_prints_native_writes_and_children(tmp_path, capsys):
    log = tmp_path / "run.log"
    with run_console.output_to_log(str(log)) as terminal:
        print("python print")
        os.write(2, b"native stderr write\n")
        subprocess.run([sys.executable, "-c", "print('child process')"], check=True)
        terminal.out.write("to the terminal\n")
    text = log.read_text()
    assert "python print" in text and "native stderr write" in text and "child process" in text
    assert capsys.readouterr().out == "to the terminal\n"


@pytest.mark.parametrize(
    ("log_text", "expected_first"),
    [
        ("a\nb\nTraceback (most recent call last):\n  File x\nValueError: bad\n", "Traceback"),
        ("x INFO y\n2026-01-01 10:00:00,000 ERROR absl: it broke\nafter\n", "2026-01-01"),
        ("one\ntwo\n", "one"),
    ],
)
def test_relevant_log_lines_start_at_the_last_error(tmp_path, log_text, expected_first):
    log = tmp_path / "run.log"
    log.write_text(log_text)
    lines = run_console.relevant_log_lines(str(log))
    assert lines[0].startswith(expected_first)
    assert lines[-1] == log_text.strip().splitlines()[-1]
