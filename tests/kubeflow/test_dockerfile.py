"""kubeflow/Dockerfile cannot be built here (no Docker engine): check what it relies on."""

import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (PROJECT_ROOT / "kubeflow" / "Dockerfile").read_text()


def test_every_copied_path_exists():
    sources = re.findall(r"^COPY\s+(\S+)\s+\S+$", DOCKERFILE, flags=re.MULTILINE)
    assert sources, "the Dockerfile copies the project"
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), source


def test_pinned_packages_match_the_lock():
    lock = (PROJECT_ROOT / "requirements" / "requirements.lock").read_text()
    pins = re.findall(r"([A-Za-z0-9_.-]+==[0-9][^\s\\]*)", DOCKERFILE)
    assert pins
    for pin in pins:
        assert f"\n{pin}\n" in f"\n{lock}", pin


def test_base_image_is_tfx_1_16_and_legacy_keras_is_set():
    assert "FROM tensorflow/tfx:1.16.0" in DOCKERFILE
    assert "ENV TF_USE_LEGACY_KERAS=1" in DOCKERFILE


def test_the_installed_package_carries_the_module_files(tmp_path):
    # Build from a clean copy: a build/ left in the checkout could mask a missing file.
    source = tmp_path / "src"
    shutil.copytree(
        PROJECT_ROOT,
        source,
        ignore=shutil.ignore_patterns("build", ".venv", "output", "*.egg-info", ".git"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "pipeline/modules/transform/mnist_transform.py",
        "pipeline/modules/trainer/mnist_trainer.py",
        "components/mnist_example_gen.py",
        "pipeline/pipeline.py",
    ):
        assert module in names, module
