"""Imports flow one way: web → bot → retrieval → knowledge. Nothing lower imports higher."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["knowledge", "retrieval", "bot", "web"]


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ORDER)
def test_no_upward_imports(package: str) -> None:
    forbidden = set(ORDER[ORDER.index(package) + 1 :])
    offenders = [
        f"{py.relative_to(ROOT)} imports {sorted(_imported_top_levels(py) & forbidden)}"
        for py in sorted((ROOT / package).rglob("*.py"))
        if _imported_top_levels(py) & forbidden
    ]
    assert not offenders, "layering violated:\n" + "\n".join(offenders)


def test_no_pickle_anywhere() -> None:
    bad = []
    for package in ORDER:
        for py in (ROOT / package).rglob("*.py"):
            mods = _imported_top_levels(py)
            if {"pickle", "joblib", "dill", "cloudpickle"} & mods:
                bad.append(str(py.relative_to(ROOT)))
    assert not bad, f"pickle-family imports found: {bad}"
