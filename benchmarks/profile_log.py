"""Where a run's seconds go, per component, read from its log's timestamps.

    python benchmarks/profile_log.py output/logs/<run-id>.log

A run's full log (`<output-dir>/logs/<run-id>.log`) has a timestamped record
for every step TFX, Beam and the Trainer take. This splits each component's
wall time (from "Component X is running." to "... is finished.") into the
phases that showed up in the profile for issue 12:

- tfx_sdist: TFX packaging its own installation as an sdist for Beam
  workers ("Attempting to infer TFX Python dependency" -> "Added --extra_package");
- user_code_pip: `pip install` of the Transform/Trainer user-code wheel
  ("Executing: [... pip install ..." -> "Successfully installed");
- prism_try: Beam's DirectRunner trying PrismRunner before falling back
  ("Running pipeline with PrismRunner." -> "Falling back to DirectRunner");
- epochs: the Trainer's epochs (from the first "epoch 1/" record's
  predecessor... to the last epoch record), with seconds per epoch;
- rest: everything else (Beam pipeline work, graph tracing, I/O, saving).
Prints a Markdown table.
"""

import argparse
import dataclasses
import datetime
import re
import sys

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ([\w.]+): (.*)$")
_PHASES = {
    "tfx_sdist": ("Attempting to infer TFX Python dependency", "Added --extra_package"),
    "user_code_pip": ("Executing: [", "Successfully installed"),
    "prism_try": ("Running pipeline with PrismRunner.", "Falling back to DirectRunner"),
}


@dataclasses.dataclass
class ComponentProfile:
    name: str
    seconds: float = 0.0
    phases: dict[str, float] = dataclasses.field(default_factory=dict)
    epochs: list[float] = dataclasses.field(default_factory=list)

    @property
    def rest(self) -> float:
        return self.seconds - sum(self.phases.values()) - sum(self.epochs)


def _time(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


def profile(lines: list[str]) -> list[ComponentProfile]:
    """Per-component phase seconds from a run log's lines."""
    found: list[ComponentProfile] = []
    current: ComponentProfile | None = None
    started = opened = last_epoch = None
    open_phase: str | None = None
    for line in lines:
        match = _LINE.match(line)
        if not match:
            continue
        when, _, logger, message = _time(match.group(1)), *match.group(2, 3, 4)
        running = re.fullmatch(r"Component (\w+) is running\.", message)
        if running:
            current, started, last_epoch = ComponentProfile(running.group(1)), when, when
            found.append(current)
            continue
        if current is None:
            continue
        if message == f"Component {current.name} is finished.":
            current.seconds = (when - started).total_seconds()
            current = None
            continue
        for phase, (begin, end) in _PHASES.items():
            if message.startswith(begin):
                open_phase, opened = phase, when
            elif open_phase == phase and message.startswith(end):
                seconds = (when - opened).total_seconds()
                current.phases[phase] = current.phases.get(phase, 0.0) + seconds
                open_phase = None
        if logger == "mnist.training" and message.startswith("epoch "):
            current.epochs.append((when - last_epoch).total_seconds())
            last_epoch = when
        elif message.startswith("Successfully installed"):
            last_epoch = when
    return found


def render(profiles: list[ComponentProfile]) -> str:
    header = "| component | total s | tfx_sdist | user_code_pip | prism_try | epochs | rest |"
    rows = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for item in profiles:
        epochs = ""
        if item.epochs:
            later = item.epochs[1:]
            epochs = (
                f"{sum(item.epochs):.1f} (first {item.epochs[0]:.1f}, then "
                f"{len(later)} x {sum(later) / max(1, len(later)):.2f})"
            )
        cells = " | ".join(f"{item.phases[p]:.1f}" if p in item.phases else "" for p in _PHASES)
        rows.append(f"| {item.name} | {item.seconds:.1f} | {cells} | {epochs} | {item.rest:.1f} |")
    total = sum(item.seconds for item in profiles)
    sums = [sum(item.phases.get(p, 0.0) for item in profiles) for p in _PHASES]
    epochs = sum(sum(item.epochs) for item in profiles)
    rows.append(
        f"| all | {total:.1f} | {' | '.join(f'{s:.1f}' for s in sums)} | {epochs:.1f} | "
        f"{total - sum(sums) - epochs:.1f} |"
    )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", help="a run log, <output-dir>/logs/<run-id>.log")
    args = parser.parse_args()
    with open(args.log, encoding="utf-8", errors="replace") as source:
        print(render(profile(source.read().splitlines())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
