"""The torch module to export: a timm architecture by name, or the user's own factory.

`--factory package.module:build` (or `path/to/file.py:build`) names a function that returns an
`nn.Module`; it gets `num_classes` and `in_chans` when its signature takes them, so a training
repository's own model code (GeM pooling, SED heads, wrappers around a timm backbone) is built
exactly as it was trained.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from birdinfer.models.torch_support import ExportError, require_torch


def build_model(arch: str, num_classes: int, in_chans: int = 1, **kwargs: Any):
    """A timm model with `in_chans` input channels and a fresh `num_classes` head, no download."""
    _, timm = require_torch()
    try:
        return timm.create_model(
            arch, pretrained=False, in_chans=in_chans, num_classes=num_classes, **kwargs
        )
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise ExportError(f"timm cannot build '{arch}': {exc}") from exc


def load_factory(spec: str) -> Callable[..., Any]:
    """The function `spec` names: `package.module:function` or `path/to/file.py:function`."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ExportError(
            f"--factory {spec!r}: expected package.module:function or path/to/file.py:function"
        )
    module = _import_file(Path(target), spec) if target.endswith(".py") else _import(target, spec)
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ExportError(f"--factory {spec!r}: {found.__name__} has no attribute '{part}'")
        found = getattr(found, part)
    if not callable(found):
        raise ExportError(f"--factory {spec!r}: {attr} is a {type(found).__name__}, not callable")
    return found


def _import(name: str, spec: str):
    # The `birdinfer` console script does not put the current folder on sys.path, as
    # `python -m` would; a training repository is usually where the command runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, or the module's own error as it runs
        raise ExportError(f"--factory {spec!r}: cannot import {name} ({exc!r})") from exc


def _import_file(path: Path, spec: str):
    """The file imported as Python would import it: a module inside a package (folders with
    __init__.py) under its dotted name, from the folder above the package, so its relative
    imports and module-level names resolve as in its own repository; a lone file from its own
    folder, as `python file.py` runs it (its sibling modules importable)."""
    if not path.is_file():
        raise ExportError(f"--factory {spec!r}: no file {path}")
    path = path.resolve()
    parts, root = [path.stem], path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    name = ".".join(parts)
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path:
        return loaded
    if len(parts) > 1:
        try:
            return importlib.import_module(name)
        except Exception as exc:  # the user's module failed: say where, with its own words
            raise ExportError(f"--factory {spec!r}: importing {name} failed: {exc!r}") from exc
    # A lone file: this very file (not a namesake earlier on sys.path), registered before it
    # runs (dataclasses and pickling look classes up by module name), under its stem unless
    # another module holds that name.
    name = name if name not in sys.modules else f"birdinfer_factory_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ExportError(f"--factory {spec!r}: importing {path} failed: {exc!r}") from exc
    return module


def build_from_factory(spec: str, num_classes: int, in_chans: int = 1):
    """Call the factory `spec` names with the arguments it takes; it must return an nn.Module."""
    torch, _ = require_torch()
    factory = load_factory(spec)
    offered = {"num_classes": num_classes, "in_chans": in_chans}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ExportError(
            f"--factory {spec!r} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model
