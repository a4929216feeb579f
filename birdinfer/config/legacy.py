"""Old spellings that still work, in one table: each with its new spelling, why it changed and
the release that removes it (a test fails once birdinfer's version reaches that release, so
the table is pruned as it goes).

An entry renames a config key (`old` and `new` are dotted keys), a key's value (`key: value`),
a public name of the package (`birdinfer.Name`) or a command's flag (`birdinfer card set
--output`; the CLI reads those entries, birdinfer.cli.common). Config entries are applied in one place,
`apply_legacy`, which birdinfer.config.loader.from_dict calls before any validation; each old
spelling found warns once (a FutureWarning naming it, its replacement and the removing release).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from birdinfer.errors import ConfigError

# The new key given as well: "refuse" (which one is meant?) or "agree" (it must hold the same
# value; the old key is dropped).
Both = Literal["refuse", "agree"]


@dataclass(frozen=True)
class Legacy:
    old: str
    new: str
    why: str
    removed_in: str
    kind: Literal["key", "value", "name", "flag"] = "key"
    both: Both = "refuse"


_BY_CONCERN = "settings by concern: what to score and what a skipped file gives"

LEGACY: tuple[Legacy, ...] = (
    *(
        Legacy(f"output.{key}", f"input.{key}", _BY_CONCERN, "0.2.0")
        for key in (
            "empty_input_fallback",
            "empty_input_fallback_files",
            "duplicate_stems",
            "placeholder_rows_for_skipped",
            "skipped_file_seconds",
        )
    ),
    Legacy(
        "executor.kind: threads",
        "executor.kind: tasks",
        "each kind names what runs: tasks of files, fed to this process's engine",
        "0.2.0",
        kind="value",
    ),
    Legacy(
        "mel.sample_rate",
        "audio.sample_rate",
        "a run has one sample rate; the mel section takes audio's",
        "0.2.0",
        both="agree",
    ),
    Legacy(
        "birdinfer.Pipeline",
        "birdinfer.Ensemble",
        "it loads and scores the members, not the whole run",
        "0.2.0",
        kind="name",
    ),
    # A flag name means one thing in every command, so the odd meanings were renamed.
    *(
        Legacy(f"birdinfer {command} {old}", f"birdinfer {command} {new}", why, "0.2.0", "flag")
        for command, old, new, why in (
            ("export", "--output", "--graph-output", "--output is a path elsewhere"),
            ("card set", "--named-output", "--graph-output", "as export names a graph output"),
            ("card set", "--output", "--emits", "--output is a path elsewhere"),
            ("frontend check", "--windows", "--window-count", "--windows is infer's table path"),
            ("bench", "--threads", "--cores", "--threads is runtime threads per model call"),
            ("bench", "--out", "--report-dir", "as quantize names its report folder"),
        )
    ),
)


def apply_legacy(
    data: Mapping[str, Any], table: tuple[Legacy, ...] = LEGACY, stacklevel: int = 2
) -> Mapping[str, Any]:
    """`data` (a config as plain data) with every old key and value in their new places.
    `stacklevel` as warnings.warn counts it from apply_legacy (2: its caller's line)."""
    if not isinstance(data, Mapping):
        return data  # the schema names what is wrong
    data = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for entry in table:
        if entry.kind == "key":
            _move_key(data, entry, stacklevel + 1)
        elif entry.kind == "value":
            _rename_value(data, entry, stacklevel + 1)
    return data


def _move_key(data: dict[str, Any], entry: Legacy, level: int) -> None:
    (old_section, old_key), (new_section, new_key) = entry.old.split("."), entry.new.split(".")
    section = data.get(old_section)
    if not isinstance(section, dict) or old_key not in section:
        return
    target = data.setdefault(new_section, {})
    if not isinstance(target, dict):
        return  # the schema names the bad section
    value = section[old_key]
    given = new_key in target
    _warn(entry, level)
    if given and entry.both == "agree" and target[new_key] != value:
        raise ConfigError(
            f"config key '{entry.old}' is {value!r} and '{entry.new}' is {target[new_key]!r}: "
            f"{entry.why}; keep '{entry.new}' only"
        )
    if given and entry.both == "refuse":
        raise ConfigError(
            f"config key '{entry.old}' is deprecated and '{entry.new}' is set too: "
            f"keep '{entry.new}'"
        )
    del section[old_key]
    if not given:
        target[new_key] = value


def _rename_value(data: dict[str, Any], entry: Legacy, level: int) -> None:
    key, old_value = entry.old.split(": ", 1)
    new_key, new_value = entry.new.split(": ", 1)
    assert key == new_key, f"a value entry keeps its key: {entry}"
    *parents, leaf = key.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get(leaf) == old_value:
        _warn(entry, level)
        node[leaf] = new_value


def renamed_name(module: str, name: str, stacklevel: int = 2) -> str | None:
    """The new name of `module.name` when the table lists it (with a warning), else None.
    `stacklevel` as warnings.warn counts it from renamed_name."""
    for entry in LEGACY:
        if entry.kind == "name" and entry.old == f"{module}.{name}":
            _warn(entry, stacklevel)
            return entry.new.rpartition(".")[2]
    return None


def _warn(entry: Legacy, level: int) -> None:
    """`level`: the frame warned about, counted from _warn's caller (1) up."""
    if entry.kind == "name":
        what = f"{entry.old} is deprecated: use {entry.new}"
    else:
        what = f"config key '{entry.old}' is deprecated: use '{entry.new}'"
        if entry.kind == "value":
            what = f"config value '{entry.old}' is deprecated: use '{entry.new}'"
    warnings.warn(
        f"{what} ({entry.why}); birdinfer {entry.removed_in} removes it",
        FutureWarning,
        stacklevel=level + 1,
    )


def release(version: str) -> tuple[int, ...]:
    """'0.2.0' (or '0.2.0.dev1') as (0, 2, 0), for ordering releases."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def overdue(version: str, table: tuple[Legacy, ...] = LEGACY) -> list[Legacy]:
    """The entries that `version` should no longer carry."""
    return [entry for entry in table if release(entry.removed_in) <= release(version)]
