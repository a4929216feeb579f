"""Reading a configuration: YAML files, `extends:` chains, bundled names, command-line
overrides, then the legacy table and the schema. Every error names the file or the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from birdinfer.config.coerce import build, to_plain
from birdinfer.config.legacy import apply_legacy
from birdinfer.config.schema import AudioConfig, Config
from birdinfer.errors import ConfigError


def from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a Config from plain data (as parsed from YAML): old spellings first
    (birdinfer.config.legacy), then a mel preset, then the one sample rate, then the schema."""
    data = expand_preset(apply_legacy(data, stacklevel=3))
    return build(Config, with_one_sample_rate(data), prefix="")


def to_dict(config: Config) -> dict[str, Any]:
    """Plain data for reports (tuples as lists); from_dict reads it back."""
    return to_plain(config)


def with_one_sample_rate(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A mel section at audio.sample_rate (given, else its default): a run has one rate."""
    mel, audio = data.get("mel"), data.get("audio")
    if not isinstance(mel, Mapping):
        return data  # null: the model's own mel settings
    rate = audio.get("sample_rate") if isinstance(audio, Mapping) else None
    if rate is None:
        rate = AudioConfig.sample_rate
    if not isinstance(rate, int) or isinstance(rate, bool):
        return data  # the schema names audio.sample_rate
    return {**data, "mel": {**mel, "sample_rate": rate}}


def expand_preset(data: Mapping[str, Any]) -> dict[str, Any]:
    """`mel: {preset: NAME, ...}`: the named front end's mel and image settings, then the keys
    given beside it (birdinfer.presets lists the names and where each comes from)."""
    data = dict(data)
    mel = data.get("mel")
    if not isinstance(mel, Mapping) or "preset" not in mel:
        return data
    from birdinfer.presets import preset_settings  # a leaf module of plain data

    try:
        settings = preset_settings(str(mel["preset"]))
    except KeyError as exc:
        raise ConfigError(f"config key 'mel.preset': {exc.args[0]}") from None
    data["mel"] = {**settings["mel"], **{k: v for k, v in mel.items() if k != "preset"}}
    if data.get("image") is None:
        data["image"] = settings["image"]
    return data


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Load a YAML config (a path, or a bundled name such as "default" or "birdclef2025").

    `overrides` maps dotted keys ("inference.workers", "input_dir") to values; they win over
    the file, which is how command-line flags are applied. An error names the key, then the
    file (and the overrides) it was loaded from.
    """
    file = resolve_config_path(path or "default")
    data = read_yaml(file)
    overrides = dict(overrides or {})
    if "mel.preset" in overrides:
        # A preset named on the command line replaces the file's mel block (and image steps)
        # whole; the other --set keys then win over the preset's values.
        data["mel"], data["image"] = {}, None
    for key, value in overrides.items():
        set_dotted(data, key, value)
    try:
        return from_dict(data)
    except ConfigError as exc:
        given = f" with {len(overrides)} override(s)" if overrides else ""
        raise ConfigError(f"{exc} (loading {file}{given})") from None


def bundled_config_dir() -> Path:
    """The configs/ folder: inside an installed wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parents[1]  # birdinfer/
    for candidate in (here / "configs", here.parent / "configs"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("no bundled configs/ folder found next to the birdinfer package")


def resolve_config_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == "" and path.parent == Path("."):
        bundled = bundled_config_dir() / f"{path.name}.yaml"
        if bundled.is_file():
            return bundled
        names = sorted(p.stem for p in bundled_config_dir().glob("*.yaml"))
        raise ConfigError(f"no config file '{path}' and no bundled config of that name ({names})")
    raise ConfigError(f"config file not found: {path}")


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's keys over those of the config it `extends:` (a bundled name, or a path
    relative to the file), and so on up: a user config holds only what it changes.

    Sections merge key by key; anything else (a list such as `models`, a scalar, null) replaces
    what the base had. A `mel:` that names a `preset` replaces the base's whole mel block, so
    that the base's mel keys never override the preset's.
    """
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"config key 'extends': a loop ({chain})")
    data = _read_one(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: config key 'extends' must name a config, got {base!r}")
    relative = path.parent / base
    parent = resolve_config_path(relative if relative.is_file() else base)
    return merge_configs(read_yaml(parent, (*seen, resolved)), data)


def merge_configs(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """`child` over `base`, as `extends:` reads them (see read_yaml)."""
    merged = dict(base)
    for key, value in child.items():
        below = merged.get(key)
        replaces = key == "mel" and isinstance(value, Mapping) and "preset" in value
        if isinstance(value, Mapping) and isinstance(below, Mapping) and not replaces:
            merged[key] = merge_configs(below, value)
        else:
            merged[key] = value
    return merged


def _read_one(path: Path) -> dict[str, Any]:
    data = _safe_yaml(path.read_text(encoding="utf-8"), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def _safe_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{where}: nested too deeply to be a config") from exc


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a command-line `key=value`; the value is read as YAML (so 4 is an int, null is None)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value")
    key, raw = text.split("=", 1)
    return key.strip(), _safe_yaml(raw, f"override '{key.strip()}'")
