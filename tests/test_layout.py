"""The house rules the tree keeps: small rooms, science apart from Kedro, one atomic writer.

Limits: a module of at most MAX_MODULE_LINES lines, a function of at most MAX_FUNCTION_LINES
lines unless its docstring says why it is longer ("Long because ..."). Ruff's size rules
(pyproject.toml) bound statements, branches and complexity; this bounds what ruff cannot.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tml_cloudremoval"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SCIENCE = ("data", "models", "training", "evaluation", "inference")
MODULES = sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_module_is_a_small_room(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_rel(path)}: {lines} lines > {MAX_MODULE_LINES}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_functions_fit_on_a_screen(path):
    too_long = []
    for fn in _functions(ast.parse(path.read_text())):
        length = fn.end_lineno - fn.lineno + 1
        doc = ast.get_docstring(fn) or ""
        if length > MAX_FUNCTION_LINES and "Long because" not in doc:
            too_long.append(f"{fn.name} ({length} lines)")
    assert not too_long, f"{_rel(path)}: {too_long} exceed {MAX_FUNCTION_LINES} lines"


WIRING = {"settings.py", "pipeline_registry.py", "__main__.py", "hooks.py", "cli.py"}
"""Kedro's own project files at the top of the package: wiring, like pipelines/ and datasets/."""
PLAIN = [
    p
    for p in MODULES
    if _rel(p).split("/")[0] in SCIENCE or ("/" not in _rel(p) and p.name not in WIRING)
]


@pytest.mark.parametrize("path", PLAIN, ids=_rel)
def test_science_does_not_import_kedro(path):
    imports = re.findall(r"^\s*(?:from|import) (kedro\w*)", path.read_text(), flags=re.M)
    assert not imports, f"{_rel(path)} imports {imports}: science modules stay plain"


def test_one_atomic_writer():
    """Only atomic.py renames files into place or makes temporary names."""
    pattern = re.compile(r"os\.replace\(|os\.rename\(|\.rename\(|mkstemp|mkdtemp|uuid\.uuid4")
    offenders = [
        _rel(p) for p in MODULES if p.name != "atomic.py" and pattern.search(p.read_text())
    ]
    assert offenders == []
