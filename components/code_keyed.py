"""TFX's Transform and Trainer, with the project code they run in their cache key.

TFX keys them on the user-code wheel it builds from the module file's
directory, which misses the project modules that code imports
(`contract.features`, `pipeline.config`): an edit there reused a stale
transform graph or model. With FingerprintDriver (components/source_fingerprint.py)
the key also holds the SHA-256 of every project module the user code imports.
Nothing else about the components changes.
"""

from tfx.components import Trainer, Transform

from components.source_fingerprint import FingerprintDriver


class CodeKeyedTransform(Transform):
    """Transform whose cache key sees the project code `preprocessing_fn` imports."""

    DRIVER_CLASS = FingerprintDriver


class CodeKeyedTrainer(Trainer):
    """Trainer whose cache key sees the project code `run_fn` imports."""

    DRIVER_CLASS = FingerprintDriver
