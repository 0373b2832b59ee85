"""Errors about the input a run was given, raised by components and explained by runners.

They live here so a runner or the run summary can recognise them without
importing the components that raise them.
"""


class InputError(RuntimeError):
    """The run's input is wrong; the message says what and how to fix it."""


class MnistArchiveError(InputError):
    """An MNIST archive is corrupt, truncated or not the original release."""


class DataAnomaliesError(InputError):
    """The examples do not match the curated schema."""


class SpanError(InputError):
    """The spans folder or a span in it is malformed (the message names the file)."""


class DataDriftError(InputError):
    """The new data's distribution is too far from what the released model was trained on."""


class SuspectLabelsError(InputError):
    """The released model disagrees with a span's labels far more than its test error predicts."""
