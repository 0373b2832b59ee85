"""Cache keys that see content: the code a component runs and the files it reads.

TFX's cache key holds a component's exec properties, input artifacts and
executor class *path*, so an edit to the code behind that path, to the
schema file (ImportSchemaGen keys on its path) or to the MNIST archives
(MnistExampleGen keys on the folder's name) would reuse stale outputs.

`FingerprintDriver` is a TFX custom driver: the local orchestrator runs it
before the cache look-up, and the exec properties it adds are part of the
cache key. It adds
- `source_sha256`: SHA-256 over the project modules the component executes,
  found by following `import` statements from the component class's
  `SOURCE_MODULES` through this project's packages (not third-party code,
  which the lock pins);
- whatever the component class's `content_fingerprints(exec_properties)`
  returns, e.g. the schema file's or the archives' SHA-256.
A component opts in with `DRIVER_CLASS = FingerprintDriver` and those two
class attributes. On Kubeflow no custom driver runs; there the image (tag
it by content) is part of KFP's cache key.
"""

import ast
import hashlib
import importlib.util
import os
import sys
import zipfile
from collections.abc import Iterable
from typing import Any

from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from contract import tfx_internals

PROJECT_PACKAGES = ("contract", "components", "pipeline", "reporting")
SOURCE_SHA256_KEY = "source_sha256"


def _module_file(module_name: str) -> str | None:
    """The .py file of a project module, found by path (nothing but the top package imported)."""
    top, *rest = module_name.split(".")
    if top not in PROJECT_PACKAGES:
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), *rest)
    for candidate in (f"{path}.py", os.path.join(path, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None  # e.g. `from pipeline.config import TrainerConfig`: a name, not a module


def _imported_modules(path: str, module_name: str) -> set[str]:
    """Project modules that `import` statements in `path` name."""
    with open(path, "rb") as source:
        tree = ast.parse(source.read(), filename=path)
    package = module_name if path.endswith("__init__.py") else module_name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            # `from contract import releases` imports the module contract.releases.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT_PACKAGES}


def module_closure(module_names: Iterable[str]) -> list[str]:
    """The files of `module_names` and every project module they import, sorted."""
    seen: dict[str, str] = {}
    waiting = list(module_names)
    while waiting:
        name = waiting.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        parent = name.rpartition(".")[0]
        if parent:
            waiting.append(parent)  # the package __init__ runs on import
        waiting.extend(_imported_modules(path, name) - set(seen))
    return sorted(set(seen.values()))


def files_sha256(paths: Iterable[str], root: str | None = None) -> str:
    """SHA-256 over (name, content) of each file; names relative to `root`.

    Relative names keep the key independent of where the checkout lives.
    """
    digest = hashlib.sha256()
    for path in sorted(paths):
        name = os.path.relpath(path, root) if root else os.path.basename(path)
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as source:
            digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


def _imports_of_source(text: bytes, filename: str) -> set[str]:
    """Project modules imported by one source file (absolute imports only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT_PACKAGES}


def _module_name_of_file(path: str) -> str | None:
    path = os.path.abspath(path)
    for entry in sys.path:
        entry = os.path.abspath(entry or os.curdir)
        if path.startswith(entry + os.sep) and path.endswith(".py"):
            return os.path.relpath(path, entry)[: -len(".py")].replace(os.sep, ".")
    return None


def user_code_modules(exec_properties: dict[str, Any]) -> set[str]:
    """Project modules behind a Transform's or Trainer's user code.

    TFX hashes the module file's directory into the user-code wheel, but not
    the project modules that code imports (e.g. `contract.features`).
    Handles a module file path, a packaged `module_path` ("name@wheel") and
    dotted `preprocessing_fn` / `run_fn` paths.
    """
    modules: set[str] = set()
    for key in ("preprocessing_fn", "run_fn"):
        if exec_properties.get(key):
            modules.add(str(exec_properties[key]).rpartition(".")[0])
    module_file = exec_properties.get("module_file")
    if module_file and os.path.isfile(module_file):
        name = _module_name_of_file(module_file)
        if name:
            modules.add(name)
        with open(module_file, "rb") as source:
            modules |= _imports_of_source(source.read(), module_file)
    module_path = str(exec_properties.get("module_path") or "")
    wheel = module_path.partition("@")[2]
    if wheel.endswith(".whl") and os.path.isfile(wheel):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.endswith(".py"):
                    modules |= _imports_of_source(archive.read(member), member)
    return modules


def source_sha256(module_names: Iterable[str]) -> str:
    """The fingerprint of the project code that `module_names` run."""
    files = module_closure(module_names)
    root = os.path.commonpath(files) if files else None
    return files_sha256(files, root=os.path.dirname(root) if root else None)


class FingerprintDriver(base_driver.BaseDriver):
    """Adds `source_sha256` and the component's content fingerprints to its cache key."""

    def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
        component_class = tfx_internals.component_class_of(execution_info)
        exec_properties = dict(execution_info.exec_properties)
        exec_properties.update(self.fingerprints(component_class, execution_info))
        result = driver_output_pb2.DriverOutput()
        for key, value in exec_properties.items():
            if value is not None:
                data_types_utils.set_metadata_value(result.exec_properties[key], value)
        return result

    def fingerprints(
        self, component_class: type, execution_info: data_types.ExecutionInfo
    ) -> dict[str, Any]:
        """{exec property: value} to add; subclasses may add more."""
        modules = set(getattr(component_class, "SOURCE_MODULES", ()))
        modules |= user_code_modules(execution_info.exec_properties)
        found = {SOURCE_SHA256_KEY: source_sha256(modules)}
        content = getattr(component_class, "content_fingerprints", None)
        if content is not None:
            found.update(content(execution_info.exec_properties))
        return found
