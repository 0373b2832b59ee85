"""A small real run shared by the reporting tests (report, model card, browser)."""

import pytest


@pytest.fixture(scope="session")
def released_run(tmp_path_factory, run_small_pipeline) -> str:
    """Output dir of one small run (3,000 train digits, 3 epochs) that released version 1."""
    output_dir = str(tmp_path_factory.mktemp("released_run"))
    assert run_small_pipeline(output_dir) == 0
    return output_dir
