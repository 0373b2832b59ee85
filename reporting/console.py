"""The local runner's terminal: a header, a line per component, training progress, the summary.

Everything else a run prints (absl/TFX logging, TensorFlow's C++ messages,
Beam, warnings, child processes) goes to `<output-dir>/logs/<run-id>.log`:
`output_to_log` points the process's stdout/stderr file descriptors at that
file for the run, and the console writes to the terminal through its own
copies of them. Progress comes from Python logging records, not from parsing
text: TFX's LocalDagRunner logs "Component %s is running." / "... is
finished." (matched on the record's format string and argument, in
`contract.tfx_internals.component_event`), and the
Trainer logs one record per epoch with a `training_epoch` dict attached
(`pipeline.modules.trainer.mnist_trainer.EpochLogger`).

Import this module before TensorFlow: `quiet_library_startup()` sets the
environment and warning filters that silence library start-up noise at its
source.
"""

import contextlib
import dataclasses
import io
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from absl import logging as absl_logging
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from contract import tfx_internals

TRAINING_EPOCH_ATTRIBUTE = "training_epoch"
NON_TERMINAL_EPOCH_LINES = 10
"""Without a terminal (CI, a pipe) about this many epoch lines are printed, not all."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PENDING_RECORDS_LIMIT = 10_000


def quiet_library_startup() -> None:
    """Silences library start-up noise at its source; call before importing TensorFlow.

    TF_CPP_MIN_LOG_LEVEL=3 keeps TensorFlow's C++ start-up lines (CUDA
    factory registration, CPU feature notes) out of the output; set it
    yourself (e.g. 0) to see them. Library FutureWarnings and
    DeprecationWarnings (Google API Python-version notices, TFX/Beam
    deprecations) are ignored; other warnings become log records. Log records
    emitted while libraries are imported (Beam's crcmod note) are held until a
    run sends them to its log (`logging_to`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        # Without a handler, the first logging.warning() call would install
        # one that prints to stderr (logging.basicConfig).
        root.addHandler(_PendingRecords())


class _PendingRecords(logging.Handler):
    """Keeps records logged before a run has a log file; `logging_to` replays them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < _PENDING_RECORDS_LIMIT:
            self.records.append(record)


@dataclasses.dataclass
class TerminalStreams:
    """Where the console writes while the process's own stdout/stderr go to the log."""

    out: TextIO
    err: TextIO


def _own_copy(stream: TextIO) -> tuple[TextIO, bool]:
    """A stream to where `stream` writes now, unaffected by later dup2 on its fd.

    Returns (stream, whether the caller must close it). A stream without a
    file descriptor (pytest's capsys) is used as it is.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return stream, False
    copy = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    return copy, True


@contextlib.contextmanager
def output_to_log(log_path: str) -> Iterator[TerminalStreams]:
    """Sends all of this process's output (and its children's) to `log_path`.

    File descriptors 1 and 2 are pointed at the log, so TensorFlow's C++
    messages, Beam, subprocesses and `print` land there; `sys.stdout` and
    `sys.stderr` become the log too. Yields streams to the original
    terminal. Everything is restored on exit.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    out, close_out = _own_copy(sys.stdout)
    err, close_err = _own_copy(sys.stderr)
    saved_fds = (os.dup(1), os.dup(2))
    saved_streams = (sys.stdout, sys.stderr)
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    try:
        yield TerminalStreams(out=out, err=err)
    finally:
        log.flush()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        log.close()
        for stream, close in ((out, close_out), (err, close_err)):
            stream.flush()
            if close:
                stream.close()


@contextlib.contextmanager
def logging_to(handlers: list[logging.Handler]) -> Iterator[None]:
    """Makes `handlers` the root logger's only handlers (INFO) for the block.

    Records held since start-up (`quiet_library_startup`) are replayed into
    them first. The previous handlers and levels are restored afterwards, so
    repeated runs in one process (tests) do not pile up handlers.
    """
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, absl_logging.get_verbosity())
    pending = [h for h in root.handlers if isinstance(h, _PendingRecords)]
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Through absl's verbosity flag, not the "absl" logger's level: TensorFlow
    # resets the logger from that flag whenever it saves a SavedModel (Transform,
    # Trainer), which would otherwise drop every later TFX INFO record.
    absl_logging.set_verbosity(absl_logging.INFO)
    for holder in pending:
        for record in holder.records:
            for handler in handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
        holder.records.clear()
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.flush()
        for handler in saved[0]:
            if not isinstance(handler, _PendingRecords):
                root.addHandler(handler)
        root.setLevel(saved[1])
        absl_logging.set_verbosity(saved[2])


def log_file_handler(stream: TextIO) -> logging.Handler:
    """The full log: every record at INFO and above, with time, level and logger."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class RunConsole:
    """Prints a run's progress: plain lines without a terminal, a live bar with one."""

    def __init__(self, streams: TerminalStreams, is_terminal: bool | None = None):
        terminal = streams.out.isatty() if is_terminal is None else is_terminal
        self.out = Console(file=streams.out, force_terminal=terminal, highlight=False)
        self.err = Console(file=streams.err, force_terminal=terminal, highlight=False)
        self.is_terminal = terminal
        self._started: dict[str, float] = {}
        self._progress: Progress | None = None
        self._progress_task: Any = None
        self._last_epoch: dict[str, Any] | None = None
        self._epoch_printed = 0
        self._training_started = 0.0

    def line(self, text: str = "") -> None:
        """One plain line (no markup, no wrapping), on stdout."""
        self.out.print(text, markup=False, soft_wrap=True)

    def error(self, text: str) -> None:
        """Lines on stderr (error messages and their hints)."""
        self.err.print(text, markup=False, soft_wrap=True)

    def component_started(self, node_id: str) -> None:
        self._started[node_id] = time.monotonic()
        self.line(f"  {node_id:<18} running")

    def component_finished(self, node_id: str, state: str) -> None:
        self._stop_progress()
        seconds = max(0.0, time.monotonic() - self._started.pop(node_id, time.monotonic()))
        self.line(f"  {node_id:<18} {state:<9} {seconds:6.1f} s")

    def component_failed(self) -> None:
        """Marks the component that was running when the run stopped, if any."""
        for node_id in list(self._started):
            self.component_finished(node_id, "failed")

    def epoch(self, record: dict[str, Any]) -> None:
        """One Trainer epoch: the bar advances, or (no terminal) a line every few epochs."""
        if self._last_epoch is None:
            self._training_started = time.monotonic()
        self._last_epoch = record
        epoch, total = int(record["epoch"]), int(record["max_epochs"])
        figures = (
            f"loss {record['loss']:.4f}  eval loss {record['eval_loss']:.4f}  "
            f"eval acc {record['eval_accuracy']:.4f}  lr {record['learning_rate']:.1e}"
        )
        if self.is_terminal:
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("    epoch"),
                    MofNCompleteColumn(),
                    BarColumn(bar_width=12),
                    TextColumn("{task.fields[compact]}"),
                    TextColumn("ETA"),
                    TimeRemainingColumn(),
                    console=self.out,
                    redirect_stdout=False,
                    redirect_stderr=False,
                    transient=False,
                )
                self._progress_task = self._progress.add_task("train", total=total, compact="")
                self._progress.start()
            compact = (
                f"loss {record['loss']:.3f} eval loss {record['eval_loss']:.3f} "
                f"acc {record['eval_accuracy']:.4f} lr {record['learning_rate']:.0e}"
            )
            self._progress.update(self._progress_task, completed=epoch, compact=compact)
            return
        every = max(1, math.ceil(total / NON_TERMINAL_EPOCH_LINES))
        if epoch == 1 or epoch % every == 0:
            self._print_epoch_line(record, figures)

    def _print_epoch_line(self, record: dict[str, Any], figures: str) -> None:
        epoch, total = int(record["epoch"]), int(record["max_epochs"])
        elapsed = time.monotonic() - self._training_started
        remaining = elapsed / epoch * (total - epoch) if epoch else 0.0
        # The ETA assumes every epoch runs; early stopping may end sooner.
        eta = f"  ETA <= {_duration(remaining)}" if epoch < total else ""
        self.line(f"    epoch {epoch:>3}/{total}  {figures}{eta}")
        self._epoch_printed = epoch

    def _stop_progress(self) -> None:
        """Ends the Trainer's bar (or prints its last epoch line) when the Trainer ends."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self._last_epoch is not None and self._epoch_printed != self._last_epoch["epoch"]:
            record = self._last_epoch
            self._print_epoch_line(
                record,
                f"loss {record['loss']:.4f}  eval loss {record['eval_loss']:.4f}  "
                f"eval acc {record['eval_accuracy']:.4f}  lr {record['learning_rate']:.1e}",
            )
        self._last_epoch = None


class ProgressHandler(logging.Handler):
    """Turns the runner's and the Trainer's log records into console lines.

    `state_of(node_id)` says how a finished component ended ("executed",
    "cached"), read from ML Metadata by the caller.
    """

    def __init__(self, console: RunConsole, state_of: Callable[[str], str]):
        super().__init__(logging.INFO)
        self.console = console
        self.state_of = state_of

    def emit(self, record: logging.LogRecord) -> None:
        try:
            epoch = getattr(record, TRAINING_EPOCH_ATTRIBUTE, None)
            if epoch is not None:
                self.console.epoch(epoch)
                return
            event = tfx_internals.component_event(record)
            if event is None:
                return
            what, node_id = event
            if what == "started":
                self.console.component_started(node_id)
            else:
                self.console.component_finished(node_id, self.state_of(node_id))
        except Exception:  # noqa: BLE001 - a display problem must not stop the run
            self.handleError(record)


def relevant_log_lines(log_path: str, count: int = 12) -> list[str]:
    """The log's last error or traceback, or failing that its last lines.

    What a failed run's message shows under "last log lines": the final
    `Traceback` block (or ERROR record) is usually the cause.
    """
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            lines = [line.rstrip("\n") for line in log if line.strip()]
    except OSError:
        return []
    starts = [
        index
        for index, line in enumerate(lines)
        if line.startswith("Traceback") or " ERROR " in line[:40]
    ]
    if starts:
        block = lines[starts[-1] :]
        return block[-count:]
    return lines[-count:]
