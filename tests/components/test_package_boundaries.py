"""Components are reusable parts: they take names and paths as parameters and
never import the pipeline definition (`pipeline/`) that wires them."""

import ast
import pathlib

COMPONENTS_DIR = pathlib.Path(__file__).resolve().parents[2] / "components"


def _imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_component_imports_the_pipeline_package():
    offenders = {
        path.name: sorted(m for m in _imported_modules(path) if m.split(".")[0] == "pipeline")
        for path in sorted(COMPONENTS_DIR.glob("*.py"))
    }
    offenders = {name: modules for name, modules in offenders.items() if modules}
    assert offenders == {}
    assert len(list(COMPONENTS_DIR.glob("*.py"))) > 10  # the scan saw the components
