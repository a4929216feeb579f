"""Each subpackage's public names: its `__init__` lists them in `__all__`, every one resolves,
its docstring names them, and the rest of the code (the package, the scripts and benchmarks, the
notebook and the tests) imports them from there rather than from the module that holds them.

Importing a subpackage stays cheap: no torch, ONNX or OpenVINO, even with every public name
resolved, and `import birdinfer` loads none of the tools."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys

import pytest

from tests.helpers import REPO

SUBPACKAGES = ("audio", "frontend", "output", "scoring", "quantize", "kaggle", "demo")
PUBLIC = ("birdinfer", *(f"birdinfer.{name}" for name in SUBPACKAGES))
HEAVY = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "timm", "torchaudio", "librosa")


# Every subpackage that lists its public names in its __init__.
LISTED = sorted(
    f"birdinfer.{path.parent.name}"
    for path in (REPO / "birdinfer").glob("*/__init__.py")
    if "__all__" in path.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("package", ["birdinfer", *LISTED])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert module.__all__ and missing == []


@pytest.mark.parametrize("package", PUBLIC)
def test_public_names_are_sorted_unique_and_not_private(package):
    names = importlib.import_module(package).__all__
    assert names == sorted(set(names))
    private = [
        n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))
    ]
    assert private == []


@pytest.mark.parametrize("package", PUBLIC[1:])
def test_the_docstring_names_every_public_name(package):
    module = importlib.import_module(package)
    unnamed = [name for name in module.__all__ if f"`{name}`" not in module.__doc__]
    assert unnamed == []


def test_importing_the_subpackages_and_their_names_loads_no_model_runtime():
    """One interpreter imports every subpackage and resolves every public name (imports only
    add modules, so what each one loads alone is contained in this); `import birdinfer` alone
    must not load the tools or the front-end check either."""
    probe = (
        "import importlib, json, sys\n"
        "import birdinfer\n"
        "first = sorted(m for m in sys.modules if m.startswith('birdinfer.'))\n"
        f"for package in {PUBLIC!r}:\n"
        "    module = importlib.import_module(package)\n"
        "    [getattr(module, name) for name in module.__all__]\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'first': first, 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["heavy"] == []
    # birdinfer.demo itself is imported: its builtin module registers the demo model.
    tools = (
        "quantize",
        "kaggle",
        "demo.heldout",
        "demo.synth",
        "demo.train",
        "frontend.check",
        "frontend.reference",
    )
    loaded = [m for m in found["first"] if m.removeprefix("birdinfer.").startswith(tools)]
    assert loaded == []


def deep_imports_of_public_names(root=REPO) -> list[str]:
    """`from birdinfer.X.module import name` outside X, where X exports that very object."""
    packages = {name: importlib.import_module(f"birdinfer.{name}") for name in SUBPACKAGES}
    found = []
    for folder in ("birdinfer", "benchmarks", "tests", "scripts", "submission"):
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                found += _deep_public(node, relative, packages)
    return found


def _deep_public(node, relative, packages) -> list[str]:
    if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
        return []
    parts = node.module.split(".")
    if len(parts) < 3 or parts[0] != "birdinfer" or parts[1] not in packages:
        return []
    if relative.parts[:2] == ("birdinfer", parts[1]):
        return []  # a subpackage's own modules import each other directly
    package, module = packages[parts[1]], importlib.import_module(node.module)
    return [
        f"{relative}:{node.lineno}: from {package.__name__} import {alias.name}"
        for alias in node.names
        if alias.name in package.__all__
        and getattr(package, alias.name) is getattr(module, alias.name, None)
    ]


def test_code_outside_a_subpackage_imports_its_public_names_from_it():
    assert deep_imports_of_public_names() == []


def test_the_import_check_sees_a_deep_import_of_a_public_name(tmp_path):
    """The rule can fail: a planted deep import of a public name is named with its fix, while a
    name the subpackage keeps inside, and the subpackage's own deep imports, are left alone."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "birdinfer" / "audio").mkdir(parents=True)
    (tmp_path / "tests" / "test_x.py").write_text(
        "from birdinfer.audio.rows import row_ids, name_problems\n"
    )
    (tmp_path / "birdinfer" / "audio" / "cuts.py").write_text(
        "from birdinfer.audio.rows import row_ids\n"
    )
    assert deep_imports_of_public_names(tmp_path) == [
        "tests/test_x.py:1: from birdinfer.audio import row_ids"
    ]
