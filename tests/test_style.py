"""Package-wide rules: ruff (configured in pyproject.toml) is clean, so style drift fails CI, and
no code path evaluates strings or unpickles data."""

import ast
import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_eval_exec_or_pickle_in_the_package():
    """Parsed, not grepped: a bare eval/exec call, a pickle import, yaml.load or
    allow_pickle=True anywhere in birdinfer fails this test."""
    found = []
    for path in sorted((REPO / "birdinfer").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            problem = _unsafe(node, ast)
            if problem:
                found.append(f"{path.name}:{node.lineno} {problem}")
    assert found == []


def _unsafe(node, ast) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"{node.func.id}()" if node.func.id in ("eval", "exec", "__import__") else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        risky = node.value.id in ("yaml", "pickle") and node.attr in ("load", "unsafe_load")
        return f"{node.value.id}.{node.attr}" if risky else None
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
        risky = any(n.split(".")[0] in ("pickle", "dill", "cloudpickle") for n in names)
        return f"imports {names}" if risky else None
    if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
        safe = isinstance(node.value, ast.Constant) and node.value.value is False
        return None if safe else "allow_pickle"
    return None
