"""flows/ is pure: every module imports only the standard library and the flows package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

FLOWS = Path(__file__).resolve().parents[1] / "flows"
FORBIDDEN = ("flask", "werkzeug", "sqlalchemy", "alembic", "redis", "rq", "twilio",
             "requests", "bot")
"""Named explicitly so a stdlib-list surprise can never let these through."""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import statement in a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # A relative import ("from . import x") stays inside the flows package.
            name = "flows" if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, name))
    return found


def impure_imports(path: Path) -> list[str]:
    """Imports of path that are neither standard library nor flows."""
    bad = []
    for line, name in imported_modules(path):
        if name in FORBIDDEN or (name != "flows" and name not in sys.stdlib_module_names):
            bad.append(f"{path.name}:{line} imports {name}")
    return bad


SOURCES = sorted(FLOWS.rglob("*.py"))


def test_flows_package_has_modules():
    assert {p.name for p in SOURCES} >= {"engine.py", "model.py", "keywords.py", "answers.py"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FLOWS)))
def test_module_imports_only_stdlib_and_flows(path):
    assert impure_imports(path) == []


def test_checker_catches_third_party_and_host_imports(tmp_path):
    # Guards the guard: the rule really rejects what it is meant to reject,
    # including imports hidden inside functions.
    source = tmp_path / "sneaky.py"
    source.write_text(
        "import json\nfrom flows import model\nfrom . import keywords\n"
        "def f():\n    import sqlalchemy.orm\n    from bot.storage import models\n"
        "    from twilio.rest import Client\n    import requests\n",
        encoding="utf-8",
    )
    assert impure_imports(source) == [
        "sneaky.py:5 imports sqlalchemy",
        "sneaky.py:6 imports bot",
        "sneaky.py:7 imports twilio",
        "sneaky.py:8 imports requests",
    ]
