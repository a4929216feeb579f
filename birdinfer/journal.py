"""Per-file results on disk, so an interrupted run (`--resume`) scores only what is left.

The journal is a folder beside the output (`submission.csv` -> `submission.journal/`):

    manifest.json         what the stored scores depend on (audio, mel, models, activation, columns)
    files/<key>.npz       one finished file: its path, size and mtime, row ids, each member's
                          activated scores, the combined scores and its warnings

Each entry is written atomically when its file is finished, so a SIGKILL loses at most the files
in flight. Entries hold scores before post-processing and rank blending (those need every file
and run again at the end), so a resumed run writes the same submission as an uninterrupted one.
An entry is used only when the recording's size and mtime still match; the file name on disk is
a hash of the recording's path, so no recording name can steer where the journal writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from birdinfer.config import to_dict
from birdinfer.submission import write_atomic, write_json_atomic

if TYPE_CHECKING:
    from birdinfer.pipeline import FileResult, Pipeline

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1


class JournalError(Exception):
    """A journal that cannot be resumed from; the message says why and what to do."""


def journal_path_for(output: Path) -> Path:
    return output.with_name(f"{output.stem}.journal")


def fingerprint(pipeline: Pipeline) -> dict[str, Any]:
    """Everything the journal's stored scores depend on; a resumed run must match it exactly."""
    config = pipeline.config
    return {
        "format": FORMAT,
        "audio": to_dict(config)["audio"],
        "models": [
            {
                "file": str(member.backend.path.resolve()),
                "sha256": _model_digest(member.backend.path),
                "weight": member.weight,
                "mel": to_dict(member.mel),
            }
            for member in pipeline.members
        ],
        "activation": config.inference.activation,
        "columns": list(pipeline.columns),
    }


class Journal:
    def __init__(self, folder: Path, stamp: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.entries = self.folder / "files"
        self.stamp = stamp

    @classmethod
    def start(cls, folder: Path, stamp: dict[str, Any], resume: bool) -> Journal:
        """Open the journal for this run: resume from it (it must match) or start it afresh."""
        journal = cls(folder, stamp)
        manifest = journal.folder / MANIFEST
        if resume and manifest.exists():
            journal._check_manifest(manifest)
        else:
            journal.clear()
        journal.entries.mkdir(parents=True, exist_ok=True)
        write_json_atomic(stamp, manifest)
        return journal

    def _check_manifest(self, manifest: Path) -> None:
        try:
            stored = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JournalError(f"{manifest}: unreadable journal manifest ({exc})") from exc
        differences = _differences(stored, self.stamp)
        if differences:
            raise JournalError(
                f"{self.folder}: the journal was written by a run with other settings, so its "
                "scores cannot be reused:\n  "
                + "\n  ".join(differences)
                + f"\ndelete {self.folder} or run without --resume"
            )

    def clear(self) -> None:
        if self.entries.is_dir():
            for entry in self.entries.iterdir():
                if entry.is_file():
                    entry.unlink()

    def entry_path(self, recording: Path) -> Path:
        key = hashlib.sha256(str(Path(recording).resolve()).encode("utf-8")).hexdigest()[:32]
        return self.entries / f"{key}.npz"

    def record(self, result: FileResult) -> None:
        """Store one finished file (not placeholder rows: a resumed run scores those)."""
        if not result.member_scores:
            return
        stat = Path(result.path).stat()
        arrays: dict[str, np.ndarray] = {
            "path": np.array(str(result.path)),
            "size": np.array(stat.st_size, dtype=np.int64),
            "mtime_ns": np.array(stat.st_mtime_ns, dtype=np.int64),
            "row_ids": np.array(result.row_ids, dtype=str),
            "warnings": np.array(result.warnings, dtype=str),
            "scores": np.asarray(result.scores, dtype=np.float32),
            "members": np.array(sorted(result.member_scores), dtype=np.int64),
        }
        for member, scores in result.member_scores.items():
            arrays[f"member_{member}"] = np.asarray(scores, dtype=np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self.entry_path(result.path), lambda h: h.write(buffer.getvalue()), True)

    def load(self, recording: Path) -> FileResult | None:
        """The stored result of `recording`, or None when absent, stale or unreadable."""
        from birdinfer.pipeline import FileResult

        entry = self.entry_path(recording)
        if not entry.is_file():
            return None
        try:
            stat = Path(recording).stat()
            with np.load(entry, allow_pickle=False) as data:
                if str(data["path"]) != str(recording):
                    return None
                if int(data["size"]) != stat.st_size or int(data["mtime_ns"]) != stat.st_mtime_ns:
                    log.info("%s changed since it was journaled: scoring it again", recording)
                    return None
                members = [int(m) for m in data["members"]]
                return FileResult(
                    path=Path(recording),
                    row_ids=[str(r) for r in data["row_ids"]],
                    scores=data["scores"],
                    warnings=[str(w) for w in data["warnings"]],
                    member_scores={m: data[f"member_{m}"] for m in members},
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # a damaged entry: score the file again
            log.warning("%s: unreadable journal entry for %s (%s)", entry, recording, exc)
            return None


def _model_digest(path: Path) -> str:
    """sha256 of a model file, and of its weights file for an OpenVINO IR."""
    digest = hashlib.sha256()
    parts = [path] + ([path.with_suffix(".bin")] if path.suffix == ".xml" else [])
    for part in parts:
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _differences(stored: Any, current: Any, key: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(current, dict):
        found = []
        for name in sorted(set(stored) | set(current)):
            where = f"{key}.{name}" if key else name
            if name not in stored or name not in current:
                found.append(f"{where}: present in only one of the journal and this run")
            else:
                found += _differences(stored[name], current[name], where)
        return found
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        pairs = enumerate(zip(stored, current, strict=True))
        return [d for i, (s, c) in pairs for d in _differences(s, c, f"{key}[{i}]")]
    if stored != current:
        return [f"{key}: journal {_shown(stored)}, this run {_shown(current)}"]
    return []


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
