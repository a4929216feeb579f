"""One error hierarchy: every error the package defines is a BirdinferError, and the CLI maps
them to exit codes by type."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from birdinfer.cli import main
from birdinfer.cli.main import exit_code
from birdinfer.errors import (
    AudioError,
    BirdinferError,
    ConfigError,
    JournalError,
    ModelError,
    SubmissionError,
)

PACKAGE = Path(__file__).resolve().parents[1] / "birdinfer"


def error_classes() -> list[type]:
    """Every class named *Error defined anywhere in the package, imported."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [
            n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Error")
        ]
        if names:
            module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
            loaded = importlib.import_module(module)
            found += [getattr(loaded, name) for name in names]
    return found


def test_every_error_the_package_defines_is_a_birdinfer_error():
    classes = error_classes()
    assert len(classes) >= 10  # the five bases and the tools' own (ExportError, QuantizeError, ...)
    assert [c.__name__ for c in classes if not issubclass(c, BirdinferError)] == []


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("config key 'x': bad"),
        AudioError("a.ogg", "cannot be decoded"),
        ModelError("m.onnx: no card"),
        SubmissionError("columns"),
        JournalError("stale"),
        FileNotFoundError("missing.yaml"),
    ],
)
def test_user_errors_exit_2(error):
    assert exit_code(error) == 2


def test_a_subclass_follows_its_base_and_a_bug_is_not_a_user_error():
    from birdinfer.models.torch_support import ExportError

    assert exit_code(ExportError("parity")) == 2
    assert exit_code(ValueError("a bug")) == 1


def test_the_command_prints_one_error_line_naming_the_key(capsys):
    assert main(["infer", "--set", "inference.batch_size=0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config key 'inference.batch_size'")
