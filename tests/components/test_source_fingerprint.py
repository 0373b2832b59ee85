"""Source fingerprints: which project files a component runs, and their hash."""

import os
import sys
import uuid
import zipfile

import pytest

from components import source_fingerprint
from pipeline import config as pipeline_config
from tests.conftest import PROJECT_ROOT

TRAINER_MODULE = "pipeline.modules.trainer.mnist_trainer"
TRANSFORM_MODULE = "pipeline.modules.transform.mnist_transform"


def _project_files(paths: list[str]) -> set[str]:
    return {os.path.relpath(path, PROJECT_ROOT) for path in paths}


def test_closure_of_anomaly_gate_stays_in_components():
    files = _project_files(source_fingerprint.module_closure(["components.anomaly_gate"]))
    assert {"components/anomaly_gate.py", "components/__init__.py"} <= files
    assert "components/source_fingerprint.py" in files, "imported by anomaly_gate"
    assert not [name for name in files if name.startswith("pipeline/")]
    assert "components/tfds_mnist.py" not in files, "not imported by anomaly_gate"


def test_closure_of_example_gen_follows_its_imports_and_no_further():
    files = _project_files(source_fingerprint.module_closure(["components.mnist_example_gen"]))
    assert {
        "components/mnist_example_gen.py",
        "components/example_export.py",
        "components/tfds_mnist.py",
    } <= files
    assert not [name for name in files if name.startswith("pipeline/")], "takes names as parameters"
    assert "components/anomaly_gate.py" not in files, "not imported by MnistExampleGen's code"


def test_closure_follows_imports_across_packages():
    files = _project_files(source_fingerprint.module_closure(["reporting.run_summary"]))
    assert {
        "reporting/run_summary.py",
        "reporting/__init__.py",
        "contract/evaluation.py",
        "contract/__init__.py",
    } <= files


def test_closure_ignores_third_party_and_unknown_modules():
    assert source_fingerprint.module_closure(["tensorflow", "os", "components.no_such"]) == []


def test_user_code_from_dotted_function_paths():
    modules = source_fingerprint.user_code_modules(
        {"run_fn": f"{TRAINER_MODULE}.run_fn", "preprocessing_fn": f"{TRANSFORM_MODULE}.fn"}
    )
    assert modules == {TRAINER_MODULE, TRANSFORM_MODULE}


def test_user_code_from_a_module_file_includes_what_it_imports():
    modules = source_fingerprint.user_code_modules(
        {"module_file": pipeline_config.TRAINER_MODULE_FILE}
    )
    assert {TRAINER_MODULE, "contract.features", "pipeline.config"} <= modules
    closure = _project_files(source_fingerprint.module_closure(modules))
    assert {
        "pipeline/modules/trainer/mnist_trainer.py",
        "contract/features.py",
        "pipeline/config.py",
    } <= closure


def test_user_code_from_a_packaged_wheel(tmp_path):
    wheel = tmp_path / "user_code-0.0+abc-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(
            "mnist_trainer.py",
            "import json\nfrom contract import features\n\ndef run_fn(fn_args):\n    pass\n",
        )
        archive.writestr("user_code-0.0+abc.dist-info/RECORD", "mnist_trainer.py,,\n")
    modules = source_fingerprint.user_code_modules({"module_path": f"mnist_trainer@{wheel}"})
    assert "contract.features" in modules
    assert "json" not in modules, "only project modules"


def test_user_code_without_user_code_is_empty():
    assert source_fingerprint.user_code_modules({"schema_file": "/x/schema.pbtxt"}) == set()


@pytest.fixture
def tmp_package(tmp_path, monkeypatch):
    """A throwaway project package `fp_pkg_<random>` on sys.path; returns (name, dir)."""
    name = f"fp_pkg_{uuid.uuid4().hex[:8]}"
    package_dir = tmp_path / name
    package_dir.mkdir()
    (package_dir / "__init__.py").write_text('"""A package."""\n')
    (package_dir / "entry.py").write_text(f"from {name} import helper\n\nVALUE = helper.VALUE\n")
    (package_dir / "helper.py").write_text("VALUE = 1\n")
    (package_dir / "unrelated.py").write_text("OTHER = 1\n")
    monkeypatch.setattr(source_fingerprint, "PROJECT_PACKAGES", (name,))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, package_dir
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_source_hash_changes_with_a_file_the_module_imports(tmp_package):
    name, package_dir = tmp_package
    entry = [f"{name}.entry"]
    closure = source_fingerprint.module_closure(entry)
    assert sorted(os.path.basename(path) for path in closure) == [
        "__init__.py",
        "entry.py",
        "helper.py",
    ]
    before = source_fingerprint.source_sha256(entry)
    assert source_fingerprint.source_sha256(entry) == before, "repeatable"

    (package_dir / "unrelated.py").write_text("OTHER = 2\n")
    assert source_fingerprint.source_sha256(entry) == before

    (package_dir / "helper.py").write_text("VALUE = 2\n")
    after_helper = source_fingerprint.source_sha256(entry)
    assert after_helper != before

    (package_dir / "__init__.py").write_text('"""A package, edited."""\n')
    assert source_fingerprint.source_sha256(entry) != after_helper


def test_source_hash_follows_a_new_import(tmp_package):
    name, package_dir = tmp_package
    entry = [f"{name}.entry"]
    before = source_fingerprint.source_sha256(entry)
    (package_dir / "unrelated.py").write_text("OTHER = 2\n")
    assert source_fingerprint.source_sha256(entry) == before

    (package_dir / "entry.py").write_text(f"from {name} import helper, unrelated\n")
    with_import = source_fingerprint.source_sha256(entry)
    assert with_import != before
    (package_dir / "unrelated.py").write_text("OTHER = 3\n")
    assert source_fingerprint.source_sha256(entry) != with_import


def test_files_hash_does_not_depend_on_where_the_checkout_lives(tmp_path):
    hashes = []
    for checkout in ("one", "two/deeper"):
        root = tmp_path / checkout
        (root / "pkg").mkdir(parents=True)
        (root / "pkg" / "a.py").write_text("A = 1\n")
        (root / "pkg" / "b.py").write_text("B = 1\n")
        paths = [str(root / "pkg" / "b.py"), str(root / "pkg" / "a.py")]
        hashes.append(source_fingerprint.files_sha256(paths, root=str(root)))
    assert hashes[0] == hashes[1]
    (tmp_path / "one" / "pkg" / "a.py").write_text("A = 2\n")
    edited = [str(tmp_path / "one" / "pkg" / name) for name in ("a.py", "b.py")]
    assert source_fingerprint.files_sha256(edited, root=str(tmp_path / "one")) != hashes[0]
