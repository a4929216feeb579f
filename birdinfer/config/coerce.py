"""Plain data (as YAML parses it) to typed values and back, against a dataclass's type hints.

It knows no config section by name, so the schema can use it (a bare normalisation step name
is read by the same rules as a YAML list of steps). Two class attributes let a dataclass take a
shorthand: `SHORTHAND`, the field that a bare string fills (`- model.onnx` for `{path: ...}`),
and `EMPTY_SPELLINGS`, the values that mean "no items" where a tuple of it is expected.
Every problem is a ConfigError that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from birdinfer.errors import ConfigError

# (taxon, weight) pairs; YAML writes them as a mapping. A tuple keeps the frozen configs hashable.
TaxonWeights = tuple[tuple[str, float], ...]


def check(ok: bool, key: str, problem: str) -> None:
    """Validation inside a dataclass's __post_init__: a ConfigError naming the key."""
    if not ok:
        raise ConfigError(f"config key '{key}': {problem}")


def build(cls: type, data: Any, prefix: str) -> Any:
    """An instance of the dataclass `cls` from a mapping; `prefix` is its dotted place."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix.rstrip('.') or '<root>'}': expected a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    odd = [k for k in data if not isinstance(k, str)]
    if odd:  # YAML reads `1:` or `.inf:` as a number: no config key is one
        raise ConfigError(
            f"config key '{prefix}{odd[0]}' is not a name (YAML read it as "
            f"{type(odd[0]).__name__}); known keys here: {sorted(known)}"
        )
    unknown = sorted(set(data) - known)
    if unknown:
        keys = ", ".join(f"'{prefix}{k}'" for k in unknown)
        raise ConfigError(f"unknown config key {keys}; known keys here: {sorted(known)}")
    values = {name: coerce(hints[name], value, prefix + name) for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - all fields have defaults
        raise ConfigError(f"config section '{prefix.rstrip('.')}': {exc}") from exc


def coerce(hint: Any, value: Any, key: str) -> Any:
    """Check `value` against a type hint, converting only where it is lossless."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"config key '{key}': bad value {value!r}"
        )
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}': {value!r} is not one of {list(args)}")
        return value
    if hint == TaxonWeights:
        return _taxon_weights(value, key)
    if origin is tuple:
        if value in getattr(args[0], "EMPTY_SPELLINGS", ()):
            return ()
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(coerce(args[0], item, f"{key}[{i}]") for i, item in enumerate(items))
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        shorthand = getattr(hint, "SHORTHAND", None)
        if shorthand and isinstance(value, str):
            value = {shorthand: value}
        return build(hint, value, key + ".")
    return _scalar(hint, value, key)


def _taxon_weights(value: Any, key: str) -> TaxonWeights:
    pairs = value.items() if isinstance(value, Mapping) else value
    if not isinstance(pairs, (list, tuple, type({}.items()))):
        raise ConfigError(f"config key '{key}': expected a mapping of taxon to weight")
    try:
        return tuple((str(k), _scalar(float, w, f"{key}.{k}")) for k, w in pairs)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{key}': expected a mapping of taxon to weight") from None


def _scalar(hint: type, value: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # YAML's .inf and .nan are floats; no setting means anything with them (an infinite
            # block_seconds skipped every file with exit code 0).
            if not math.isfinite(value):
                raise ConfigError(f"config key '{key}': must be a finite number, got {value!r}")
            return float(value)
    elif hint is str and isinstance(value, str):
        return value
    raise ConfigError(
        f"config key '{key}': expected {hint.__name__}, got {type(value).__name__} {value!r}"
    )


def to_plain(value: Any) -> Any:
    """Plain data (dicts, lists, scalars) for any config section, as YAML and card JSON hold it.
    A dataclass with its own `to_plain` method spells itself."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_plain"):
            return value.to_plain()
        return plain_fields(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def plain_fields(value: Any) -> dict[str, Any]:
    """A dataclass's fields as plain data, each by to_plain."""
    return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
