"""The runtime's tests use the runtime only: no torch, onnx, train/ or export/ anywhere in them
(or in the test helpers they import), so they run where only `pip install '.[dev]'` is installed."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

FORBIDDEN = ("torch", "onnx", "train", "export")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (function-local imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def test_runtime_tests_import_no_torch_onnx_train_or_export() -> None:
    todo = [*sorted((ROOT / "tests" / "edgeinfer").glob("*.py")), ROOT / "tests" / "conftest.py",
            ROOT / "tests" / "test_shipped_models.py"]
    seen: set[Path] = set()
    bad = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN:
                bad.append(f"{path.relative_to(ROOT)}: {name}")
            elif name.split(".")[0] == "tests" and (found := _module_file(name)):
                todo.append(found)  # follow the test helpers it uses
    assert not bad, bad
    assert ROOT / "tests" / "fixtures" / "__init__.py" in seen and ROOT / "tests" / "datasets.py" in seen
