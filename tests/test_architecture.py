"""The house rules, checked on the source: imports point one way, transitively.

runners (local_runner, kubeflow, benchmarks) -> pipeline -> components ->
contract; reporting and serving read through contract alone. Every import
statement counts, at module level or inside a function, and so does every
module it reaches: a package may not reach a layer above it through another
package. The Keras environment and private TFX names each live in one module.
"""

import ast
import pathlib
import re

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGES = ("contract", "components", "pipeline", "reporting", "serving", "kubeflow")
MAY_REACH = {
    "contract": {"contract"},
    "components": {"components", "contract"},
    "pipeline": {"pipeline", "components", "contract"},
    "reporting": {"reporting", "contract"},
    "serving": {"serving", "contract"},
    "kubeflow": {"kubeflow", "pipeline", "components", "contract"},
    "local_runner": {"local_runner", "pipeline", "components", "contract", "reporting"},
}
"""Which packages each package's imports may reach, directly or through others."""
USER_CODE = "pipeline.modules"
"""preprocessing_fn and run_fn: only TFX (and their own tests) may import them."""


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source_modules() -> dict[str, pathlib.Path]:
    modules = {"local_runner": PROJECT_ROOT / "local_runner.py"}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            modules[_module_name(path)] = path
    return modules


MODULES = _source_modules()


def _imports(path: pathlib.Path) -> set[str]:
    """Project modules `path` imports anywhere in it (a `from a import b` may name module a.b)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            # The module itself, else the package it names (from x.y import Name).
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


EDGES = {module: _imports(path) for module, path in MODULES.items()}


def _reach(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for imported in EDGES[todo.pop()]:
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            parents = [".".join(imported.split(".")[:i]) for i in range(1, imported.count(".") + 1)]
            for reached in (imported, *(p for p in parents if p in MODULES)):
                if reached not in seen:
                    seen.add(reached)
                    todo.append(reached)
    return seen


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_the_scan_sees_every_package():
    assert {_layer(module) for module in MODULES} == {*PACKAGES, "local_runner"}
    assert sum(len(edges) for edges in EDGES.values()) > 50


@pytest.mark.parametrize("layer", sorted(MAY_REACH))
def test_imports_point_one_way_transitively(layer):
    offenders = {}
    for module in sorted(m for m in MODULES if _layer(m) == layer):
        above = sorted(m for m in _reach(module) if _layer(m) not in MAY_REACH[layer])
        if above:
            offenders[module] = above
    assert offenders == {}, f"{layer} reaches layers above it: {offenders}"


@pytest.mark.parametrize("layer", ["components", "reporting", "serving", "contract", "kubeflow"])
def test_no_package_but_the_pipeline_reaches_user_code(layer):
    offenders = {
        module: sorted(m for m in _reach(module) if m.startswith(USER_CODE))
        for module in MODULES
        if _layer(module) == layer
    }
    assert {module: found for module, found in offenders.items() if found} == {}


def test_contract_is_a_leaf():
    for module in (m for m in MODULES if _layer(m) == "contract"):
        assert {_layer(m) for m in EDGES[module]} <= {"contract"}, module


def test_the_checker_catches_a_back_edge(tmp_path, monkeypatch):
    # A fake edge components -> reporting must be reported, through one hop too.
    monkeypatch.setitem(EDGES, "contract.files", EDGES["contract.files"] | {"reporting.console"})
    reached = _reach("components.release_pusher")
    assert "reporting.console" in reached


def _project_sources() -> list[pathlib.Path]:
    return [*MODULES.values(), *(PROJECT_ROOT / "benchmarks").glob("*.py")]


def test_one_place_sets_the_keras_environment():
    setters = [
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in _project_sources()
        if "TF_USE_LEGACY_KERAS" in path.read_text()
        and re.search(r"environ(\.setdefault\(|\[)\s*\"TF_USE_LEGACY_KERAS\"", path.read_text())
    ]
    assert setters == ["contract/__init__.py"]
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "TF_USE_LEGACY_KERAS" not in makefile


PRIVATE_TFX = re.compile(
    r"\b(_make_pipeline_proto|_parse_flags|_MarkPushed|_MarkNotPushed|_run_exitfuncs"
    r"|_INFRA_BLESSING_MODEL_FLAG_KEY)\b|\._context\b|\.train_step\s*="
)


def test_private_tfx_names_are_used_in_one_module():
    users = sorted(
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in _project_sources()
        if PRIVATE_TFX.search(path.read_text())
    )
    assert users == ["contract/tfx_internals.py"]
