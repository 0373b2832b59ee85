"""What a pipeline run did, read back from ML Metadata and TFMA's outputs.

The runner prints this after each run: per-component times (executed or
cached), the test accuracy, whether the model was blessed (and if not, which
threshold it missed), and where it was released.
"""

import dataclasses
import os

from contract import metadata_store as stores
from contract.errors import InputError
from contract.evaluation import (
    digit_accuracy,
    overall_accuracy,
    top_confusions,
    validation_failures,
)
from reporting import metadata


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """The outcome of one pipeline run."""

    run_id: str
    components: list[metadata.ComponentRun]
    test_accuracy: float | None
    blessed: bool
    validation_failures: list[str]
    pushed_destination: str | None
    """The release that holds this run's model (pushed now or before), if any."""
    digit_accuracy: dict[int, float] = dataclasses.field(default_factory=dict)
    """Test accuracy per true digit (TFMA slice on the label)."""
    confusions: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    """For each true digit: (most frequent wrong prediction, how often)."""
    released_now: bool = False
    """True if this run copied the model into a new release directory."""
    not_released_reason: str = ""
    """The Pusher's reason when it released nothing (a gate that refused)."""
    pushed_version: str | None = None

    def worst_digits(self, count: int = 3) -> list[int]:
        """The digits the model gets wrong most often, worst first."""
        return sorted(self.digit_accuracy, key=self.digit_accuracy.get)[:count]

    @property
    def pushed(self) -> bool:
        return self.pushed_destination is not None

    def component(self, node_id: str) -> metadata.ComponentRun | None:
        """Returns the named component's execution in this run, if any."""
        return next((c for c in self.components if c.node_id == node_id), None)

    def render(self, with_components: bool = True) -> str:
        """A short human summary, printed at the end of `local_runner.py`.

        Args:
          with_components: Include a line per component (the progress
            console has shown them already).
        """
        lines = [f"Pipeline run {self.run_id}"] if with_components else []
        for component in self.components if with_components else ():
            lines.append(
                f"  {component.node_id:<32} {component.state:<9} {component.seconds:7.1f} s"
            )
        accuracy = "n/a" if self.test_accuracy is None else f"{self.test_accuracy:.4f}"
        lines.append(f"Test accuracy: {accuracy}")
        for digit in self.worst_digits():
            wrong, times = self.confusions.get(digit, (None, 0))
            mistaken = f", most often read as {wrong} ({times}x)" if times else ""
            lines.append(
                f"  weak digit {digit}: accuracy {self.digit_accuracy[digit]:.4f}{mistaken}"
            )
        lines.append(f"Blessed: {'yes' if self.blessed else 'no'}")
        lines.extend(f"  not blessed because: {failure}" for failure in self.validation_failures)
        if not self.pushed:
            lines.append("Pushed: no (nothing released)")
            if self.not_released_reason and not self.validation_failures:
                lines.append(f"  {self.not_released_reason}")
        elif not self.released_now:
            lines.append(
                f"Pushed: nothing new (already released as version {self.pushed_version}, "
                f"at {shown_path(self.pushed_destination)})"
            )
        else:
            lines.append(f"Pushed to: {shown_path(self.pushed_destination)}")
        return "\n".join(lines)


def shown_path(path: str | None) -> str | None:
    """A path as the user would type it: relative when it is under the current dir."""
    if not path or "://" in path:
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def latest_run_summary(
    metadata_path: str, pipeline_name: str, run_id: str | None = None
) -> RunSummary:
    """Summarizes run `run_id` of `pipeline_name` (None: the most recent run).

    Args:
      metadata_path: The store: a SQLite path or a `--metadata` URL.
      pipeline_name: The pipeline's name.
      run_id: The run; None for the most recent one.
    """
    store = metadata.connect(metadata_path)
    try:
        context = metadata.run_context(store, run_id)
    except LookupError as error:
        raise LookupError(f"{error} ({stores.parse(metadata_path).redacted()})") from None
    components = metadata.component_runs(store, context.id, pipeline_name)
    by_node = {c.node_id: c for c in components}
    evaluation = by_node.get("Evaluator")
    accuracy, blessed, failures, per_digit, confusions = None, False, [], {}, {}
    if evaluation and "evaluation" in evaluation.outputs:
        evaluation_uri = evaluation.outputs["evaluation"].uri
        accuracy = overall_accuracy(evaluation_uri)
        per_digit = digit_accuracy(evaluation_uri)
        confusions = top_confusions(evaluation_uri)
        failures = validation_failures(evaluation_uri)
        blessing = evaluation.outputs["blessing"]
        blessed = blessing.custom_properties["blessed"].int_value == 1
    pusher = by_node.get("Pusher")
    destination, version, released_now, reason = None, None, False, ""
    if pusher and "pushed_model" in pusher.outputs:
        properties = pusher.outputs["pushed_model"].custom_properties
        pushed = properties["pushed"].int_value == 1
        reason = properties["reason"].string_value
        if pushed or properties["already_released"].int_value == 1:
            destination = properties["pushed_destination"].string_value
            version = properties["pushed_version"].string_value
            released_now = pushed and pusher.state == "executed"
    return RunSummary(
        run_id=context.name,
        components=components,
        test_accuracy=accuracy,
        blessed=blessed,
        validation_failures=failures,
        pushed_destination=destination,
        pushed_version=version,
        released_now=released_now,
        not_released_reason=reason,
        digit_accuracy=per_digit,
        confusions=confusions,
    )


def explain_failure(error: BaseException) -> str:
    """Turns a failed run's exception into a message that says what to fix."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, InputError):
            return f"Pipeline stopped: {cause}"
        cause = cause.__cause__ or cause.__context__
    return (
        f"Pipeline run failed: {type(error).__name__}: {error}\n"
        "Nothing new was released. Fix the cause above and rerun; components that "
        "already succeeded are cached and will not run again."
    )
