"""Where a local run keeps things under its --output-dir: the runner writes there, readers read.

The runner (`local_runner.py`), the report, the lineage command and the
benchmarks all find the pipeline root, ML Metadata and the serving directory
through `OutputLayout`, so none of them needs the others to know the layout.
"""

import dataclasses
import os

PIPELINE_NAME = "mnist"
"""The pipeline's name: ML Metadata contexts and the serving directory carry it."""


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """Where a local run keeps its pipeline root, metadata and releases."""

    output_dir: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.db")

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.output_dir, "serving", PIPELINE_NAME)

    @property
    def tfds_data_dir(self) -> str:
        return os.path.join(self.output_dir, "tfds")

    @property
    def logs_dir(self) -> str:
        """One full log per run: `<run-id>.log`."""
        return os.path.join(self.output_dir, "logs")

    @property
    def reports_dir(self) -> str:
        """One HTML report per run: `<run-id>/index.html`, and `latest`."""
        return os.path.join(self.output_dir, "reports")
