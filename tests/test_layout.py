"""The four top-level packages import from the repo root, and the import rule between them holds."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "dialogs", "handlers", "storage")
# What each package may import of ours (ARCHITECTURE.md, "Packages").
ALLOWED = {
    "storage": set(),
    "dialogs": set(),
    "handlers": {"dialogs", "storage", "bot"},
    "bot": {"bot", "dialogs", "handlers", "storage"},
}


@pytest.mark.parametrize("name", PACKAGES)
def test_package_is_ours(name: str) -> None:
    module = importlib.import_module(name)
    assert Path(module.__file__ or "").resolve().parent == ROOT / name


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_import_rule(name: str) -> None:
    bad = {
        str(p.relative_to(ROOT)): sorted(_imports(p) - ALLOWED[name] - {name})
        for p in (ROOT / name).rglob("*.py")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_composition_root_imports_handlers() -> None:
    users = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "bot").rglob("*.py")
        if "handlers" in _imports(p)
    }
    assert users <= {"bot/app.py", "bot/pipeline.py", "bot/__main__.py", "bot/cli.py"}
