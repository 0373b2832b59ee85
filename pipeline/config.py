"""All knobs of the pipeline, in one place.

Runners build a `PipelineConfig` (defaults here, a few overridden by flags) and
hand it to `create_pipeline`; `run_fn` receives the trainer part through the
Trainer's `custom_config`. No hyper-parameter is a literal anywhere else.
"""

import dataclasses
import pathlib
from typing import Any

# Re-exported: the runners read every setting, the output layout included, from here.
from contract.layout import PIPELINE_NAME as PIPELINE_NAME
from contract.layout import OutputLayout as OutputLayout

_PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Hyper-parameters of the dense Keras model and its training loop.

    The seed's kind of network (Dense 50-50), trained for time-to-accuracy on
    2 cores (issue 12): small random shifts of the training digits (the
    dense model cannot learn translation invariance from centred digits
    alone), large batches (step overhead dominates a model this small) with
    a higher learning rate, a linear warm-up and cosine decay, no dropout (it
    slowed convergence more than it helped), and early stopping on the eval
    loss as a guard (best weights restored). How each choice was measured,
    and the accuracies and epoch times it gives: benchmarks/README.md
    (benchmarks/trainer_sweep.py, benchmarks/seed_recipe.py).
    """

    hidden_units: tuple[int, ...] = (50, 50)
    dropout_rate: float = 0.0
    learning_rate: float = 6e-3
    batch_size: int = 1024
    shuffle_buffer: int = 10_000
    augment_max_shift: float = 0.08
    """Random shift of training digits, as a fraction of 28 px (about 2 px)."""
    max_epochs: int = 40
    early_stopping_patience: int = 8
    lr_plateau_patience: int = 3
    lr_plateau_factor: float = 0.5
    min_learning_rate: float = 1e-5
    lr_schedule: str = "cosine"
    """"cosine": linear warm-up over warmup_epochs to learning_rate, then
    cosine decay to min_learning_rate at max_epochs; "plateau": halve the LR
    after lr_plateau_patience flat epochs (the schedule before issue 12)."""
    warmup_epochs: int = 2
    seed: int = 42
    warm_start_epochs: int = 5
    """With --warm-start and a release to start from: epochs of the short schedule."""
    warm_start_learning_rate: float = 3e-4
    """...its learning rate (no warm-up; cosine decay to min_learning_rate)."""

    def for_warm_start(self) -> "TrainerConfig":
        """The short schedule a warm start trains: from the released weights, no warm-up."""
        return dataclasses.replace(
            self,
            max_epochs=self.warm_start_epochs,
            learning_rate=self.warm_start_learning_rate,
            warmup_epochs=0,
        )

    def to_custom_config(self) -> dict[str, Any]:
        """Returns the JSON-able dict passed as the Trainer's custom_config."""
        config = dataclasses.asdict(self)
        config["hidden_units"] = list(self.hidden_units)
        return config

    @classmethod
    def from_custom_config(cls, custom_config: dict[str, Any] | None) -> "TrainerConfig":
        """Rebuilds the config inside run_fn; unknown keys are an error."""
        values = dict(custom_config or {})
        if "hidden_units" in values:
            values["hidden_units"] = tuple(int(units) for units in values["hidden_units"])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How MnistExampleGen cuts TFDS MNIST into train / eval / test."""

    eval_holdout_size: int = 5000
    split_seed: int = 0
    train_limit: int = 0
    """Use only the first N TFDS train examples; 0 = all (tests use a slice)."""
    test_limit: int = 0
    allow_download: bool = False
    """Without the archives, let TFDS download MNIST (only with --download)."""


@dataclasses.dataclass(frozen=True)
class SpanConfig:
    """Continuous training: the span window, its hold-outs and the gates for new data.

    Used when a run is given a spans folder (`--spans-dir`); docs/spans.md
    explains each gate and how the thresholds were chosen.
    """

    span_window: int = 0
    """Train on MNIST plus the newest this many spans; 0 = all spans."""
    eval_fraction: float = 0.1
    """Part of each span held out for early stopping."""
    test_fraction: float = 0.2
    """Part of each span held out as its new-data test slice."""
    image_js_threshold: float = 0.1
    """Drift gate: largest Jensen-Shannon divergence of the pixel intensities."""
    label_linf_threshold: float = 0.1
    """Drift gate: largest L-infinity distance of the label distribution."""
    drift_warn_only: bool = False
    """Drift beyond a threshold warns instead of stopping the run."""
    label_error_margin: float = 0.1
    """Label gate: a span is suspect when the served model disagrees with its labels
    more often than its test error plus this..."""
    label_max_p_value: float = 1e-6
    """...and when the binomial tail of its disagreements is below this."""
    span_accuracy_threshold: float = 0.95
    """Lowest accuracy on the window's new-data test slice that may be released."""


def default_beam_args(project_dir: str) -> tuple[str, ...]:
    """Beam options for the Beam-powered components when no --beam-args are given.

    Beam's local FnApiRunner (what the DirectRunner ends up using), in-memory,
    one worker: on this 2-core machine the multi-processing mode spends more
    starting worker processes (each imports TensorFlow) than it saves on
    MNIST-sized data (docs/running.md, "Configuration"). Naming FnApiRunner
    skips the DirectRunner's attempt at PrismRunner first (a binary it
    downloads at run time, unreachable here). `--setup_file` names what remote
    workers would install; in-process workers need nothing staged, and with
    it TFX no longer packages its own installation as an sdist before every
    Beam component. What each costs: benchmarks/README.md.
    """
    return (
        "--runner=FnApiRunner",
        "--direct_running_mode=in_memory",
        "--direct_num_workers=1",
        f"--setup_file={project_dir.rstrip('/')}/setup.py",
    )


DEFAULT_BEAM_ARGS = default_beam_args(str(_PROJECT_ROOT))


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything `create_pipeline` needs besides paths."""

    pipeline_name: str = PIPELINE_NAME
    accuracy_threshold: float = 0.97
    """Evaluator blesses only models with test accuracy >= this."""
    baseline_tolerance: float = 1e-10
    """A candidate may be at most this much less accurate than the released model."""
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    spans: SpanConfig = dataclasses.field(default_factory=SpanConfig)
    beam_pipeline_args: tuple[str, ...] = DEFAULT_BEAM_ARGS
    enable_cache: bool = True
    warm_start: bool = False
    """The Trainer starts from the served release's weights (WarmStartModel -> base_model)
    and trains `trainer.for_warm_start()`; without a release it trains from scratch."""


@dataclasses.dataclass(frozen=True)
class UserCode:
    """Where Transform and Trainer find `preprocessing_fn` and `run_fn`.

    Both runners use dotted *import paths* into this package
    (`import_paths()`): on Kubeflow the package is baked into the pipeline
    image, so the compiled pipeline carries no path of the compiling machine;
    locally the code is imported in-process. A code change still reruns the
    component: CodeKeyedTransform/CodeKeyedTrainer put the hash of the
    module and the project modules it imports into the cache key. Module
    *files* (`module_files()`) also work, but TFX then builds the code into a
    wheel and pip-installs it into a temp dir each time it loads it (four
    times a run; the cost is in benchmarks/README.md). Exactly one of each
    pair is set.
    """

    transform_module_file: str | None = None
    trainer_module_file: str | None = None
    preprocessing_fn: str | None = None
    run_fn: str | None = None

    @classmethod
    def module_files(cls) -> "UserCode":
        return cls(
            transform_module_file=TRANSFORM_MODULE_FILE, trainer_module_file=TRAINER_MODULE_FILE
        )

    @classmethod
    def import_paths(cls) -> "UserCode":
        return cls(
            preprocessing_fn="pipeline.modules.transform.mnist_transform.preprocessing_fn",
            run_fn="pipeline.modules.trainer.mnist_trainer.run_fn",
        )


# Project files the pipeline is built from. Module files are passed to TFX by
# path, so TFX packages and hashes them (a code change invalidates the cache).
SCHEMA_FILE = str(_PROJECT_ROOT / "schemas" / "schema.pbtxt")
TRANSFORM_MODULE_FILE = str(
    _PROJECT_ROOT / "pipeline" / "modules" / "transform" / "mnist_transform.py"
)
TRAINER_MODULE_FILE = str(_PROJECT_ROOT / "pipeline" / "modules" / "trainer" / "mnist_trainer.py")
DEFAULT_MNIST_DIR = str(_PROJECT_ROOT / "data" / "mnist")
