"""Per-file results on disk, so an interrupted run (`--resume`) scores only what is left.

The journal is a folder beside the output (`submission.csv` -> `submission.journal/`):

    manifest.json             what the stored scores depend on (audio, mel, models with every
                              file they consist of, their geometry and mappings, activation,
                              columns)
    files/<key>.npz|.parquet  one finished file: its absolute path, the size and mtime of what
                              was decoded, row ids, each member's activated scores, the combined
                              scores, its warnings and the members' per-row embeddings
                              (models.embedding)

Each entry is written atomically when its file is finished, so a SIGKILL loses at most the files
in flight. Each carries a SHA-256 of its content (facts, row ids, every score and embedding, as
float32 bytes): an entry that fails it, lacks it, or cannot be read in any way (a rotted disk, a
foreign file in its place) is scored again, with a warning. Entries hold scores before post-processing and rank blending (those need every file
and run again at the end), so a resumed run writes the same submission as an uninterrupted one.
An entry is used only when the recording's size and mtime still match those of the handle that
was decoded (a file replaced while it was scored never matches); the file name on disk is a hash
of the recording's absolute path, so a relative and an absolute `--input` for one folder find the
same entries, and no recording name can steer where the journal writes.

Two entry formats hold the same thing: `.npz` (numpy only: the default) and `.parquet` (one row
per window, as the per-window table, with member scores as `member<i>:<class>` columns and the
file facts in the schema metadata): what distributed workers write, readable as one dataset by
pandas, pyarrow or dask.dataframe.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from birdinfer.atomic import write_atomic, write_json_atomic
from birdinfer.config import to_dict
from birdinfer.errors import JournalError
from birdinfer.models.files import files_sha256, model_files
from birdinfer.output import journal_path_for
from birdinfer.output.paths import real_path
from birdinfer.results import FileIdentity, FileResult

if TYPE_CHECKING:
    from birdinfer.config import Config
    from birdinfer.scorer.ensemble import Ensemble

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
ENTRY_SUFFIXES = (".npz", ".parquet")
PARQUET_KEY = b"birdinfer.entry"


def open_for_run(
    config: Config, ensemble: Ensemble, output: Path | None, entry_format: str | None
) -> Journal | None:
    """The run's journal, beside the submission (or the table), with entries of `entry_format`
    as the run's plan says ("npz", "parquet"; None: the run keeps none). It starts afresh unless
    `output.resume` is set."""
    if entry_format is None:
        return None
    anchor = output or Path(config.output.windows)
    return Journal.start(
        journal_path_for(anchor), fingerprint(ensemble), config.output.resume, entry_format
    )


def fingerprint(ensemble: Ensemble) -> dict[str, Any]:
    """Everything the journal's stored scores depend on; a resumed run must match it exactly."""
    config = ensemble.config
    return {
        "format": FORMAT,
        "audio": to_dict(config)["audio"],
        "models": [
            {
                "file": str(member.backend.path.resolve()),
                "sha256": files_sha256(*model_files(member.backend.path)),
                "weight": member.weight,
                "input": member.backend.card.input_kind,
                "mel": to_dict(member.mel),
                "image": to_dict(member.image),
                "output": member.output.name,
                "activation": member.activation,
                "frame_pooling": member.frame_pooling,
                "geometry": member.geometry.describe(),
                # The mapping's content, not its path: an edited mapping moves the scores.
                "mapping": files_sha256(Path(member.mapping)) if member.mapping else None,
                "embeddings": list(member.embeddings),
            }
            for member in ensemble.members
        ],
        "activation": config.inference.activation,
        "columns": list(ensemble.columns),
    }


class Journal:
    def __init__(self, folder: Path, stamp: dict[str, Any], entry_format: str = "npz") -> None:
        if entry_format not in ("npz", "parquet"):
            raise ValueError(f"journal entry format {entry_format!r}: 'npz' or 'parquet'")
        self.folder = Path(folder)
        self.entries = self.folder / "files"
        self.stamp = stamp
        self.entry_format = entry_format

    @classmethod
    def start(
        cls, folder: Path, stamp: dict[str, Any], resume: bool, entry_format: str = "npz"
    ) -> Journal:
        """Open the journal for this run: resume from it (it must match) or start it afresh."""
        journal = cls(folder, stamp, entry_format)
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

    def key(self, recording: Path) -> str:
        # os.fsencode: a name whose bytes are not UTF-8 hashes as those bytes; real_path: a
        # symlink loop hashes as itself (Path.resolve raised RuntimeError on one)
        return hashlib.sha256(os.fsencode(real_path(recording))).hexdigest()[:32]

    def entry_path(self, recording: Path) -> Path:
        return self.entries / f"{self.key(recording)}.{self.entry_format}"

    def record(self, result: FileResult) -> None:
        """Store one finished file (not placeholder rows: a resumed run scores those)."""
        if not result.member_scores:
            return
        # What was decoded, not what is on disk now: the file may have been replaced meanwhile.
        identity = result.identity or _identity(Path(result.path))
        facts = {
            "path": str(real_path(result.path)),
            "size": identity.size,
            "mtime_ns": identity.mtime_ns,
            "warnings": list(result.warnings),
            "members": sorted(result.member_scores),
            "classes": len(self.stamp["columns"]),
            "embeddings": list(result.embeddings),
        }
        facts["checksum"] = content_checksum(
            facts, result.row_ids, result.scores, result.member_scores, result.embeddings
        )
        dump = _parquet_bytes if self.entry_format == "parquet" else _npz_bytes
        data = dump(result, facts, self.stamp)
        # Not synced to disk: after a power cut an entry may be short or empty, which `load`
        # treats as absent (the file is scored again), and each fsync held the task that wrote
        # it for milliseconds (docs/throughput.md, "Figures behind the code's choices").
        write_atomic(self.entry_path(result.path), lambda h: h.write(data), True, durable=False)

    def resumed(self, files: list[Path], stems: list[str]) -> dict[int, FileResult]:
        """Files already journaled (same file, same row-id stem), by their index in `files`."""
        found = {}
        for i, (path, stem) in enumerate(zip(files, stems, strict=True)):
            stored = self.load(path)
            if stored is not None and stored.row_ids and stored.row_ids[0].startswith(f"{stem}_"):
                found[i] = stored
        return found

    def load(self, recording: Path) -> FileResult | None:
        """The stored result of `recording`, or None when absent, stale or unreadable."""
        key = self.key(recording)
        for suffix in ENTRY_SUFFIXES:
            entry = self.entries / f"{key}{suffix}"
            if not entry.is_file():
                continue
            try:
                read = _read_parquet if suffix == ".parquet" else _read_npz
                facts, row_ids, scores, member_scores, embeddings = read(entry)
                _verify(facts, row_ids, scores, member_scores, embeddings)
                stat = Path(recording).stat()
            except Exception as exc:  # noqa: BLE001 - any rot (a foreign compression, a .npy in
                # its place, flipped bits) costs the file a new scoring, never the run
                reason = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "%s: unreadable journal entry for %s (%s): scoring it again",
                    entry,
                    recording,
                    reason,
                )
                continue
            if facts["path"] not in (str(recording), str(real_path(recording))):
                continue
            if facts["size"] != stat.st_size or facts["mtime_ns"] != stat.st_mtime_ns:
                log.info("%s changed since it was journaled: scoring it again", recording)
                continue
            return FileResult(
                path=Path(recording),
                row_ids=row_ids,
                scores=scores,
                warnings=list(facts["warnings"]),
                member_scores=member_scores,
                embeddings=embeddings,
            )
        return None


def content_checksum(
    facts: dict[str, Any],
    row_ids: list[str],
    scores: Any,
    member_scores: dict[int, Any],
    embeddings: dict[str, Any],
) -> str:
    """SHA-256 of an entry's content as it is read back: the facts (less the checksum), row
    ids, and every score and embedding as C-ordered float32 bytes with its shape."""
    digest = hashlib.sha256()
    stated = {k: v for k, v in facts.items() if k != "checksum"}
    digest.update(json.dumps(stated, sort_keys=True).encode())
    digest.update(json.dumps([str(r) for r in row_ids]).encode())
    arrays = [scores] + [member_scores[m] for m in sorted(member_scores)]
    arrays += [embeddings[name] for name in sorted(embeddings)]
    for values in arrays:
        values = np.ascontiguousarray(values, dtype=np.float32)
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def _verify(facts, row_ids, scores, member_scores, embeddings) -> None:
    if not isinstance(facts, dict) or "checksum" not in facts:
        raise ValueError("the entry has no checksum")
    if facts["checksum"] != content_checksum(facts, row_ids, scores, member_scores, embeddings):
        raise ValueError("the entry's content does not match its checksum")


def _identity(path: Path) -> FileIdentity:
    status = path.stat()
    return FileIdentity(status.st_size, status.st_mtime_ns)


def _npz_bytes(result: FileResult, facts: dict[str, Any], stamp: dict[str, Any]) -> bytes:
    arrays = {
        "facts": np.array(json.dumps(facts)),
        "row_ids": np.array(result.row_ids, dtype=str),
        "scores": np.asarray(result.scores, dtype=np.float32),
    }
    for member, scores in result.member_scores.items():
        arrays[f"member_{member}"] = np.asarray(scores, dtype=np.float32)
    for k, values in enumerate(result.embeddings.values()):  # named in facts, in this order
        arrays[f"embedding_{k}"] = np.asarray(values, dtype=np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_npz(entry: Path):
    data = np.load(entry, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy in its place
        raise ValueError(f"a {type(data).__name__}, not an .npz archive")
    with data:
        facts = json.loads(str(data["facts"]))
        members = {m: data[f"member_{m}"] for m in facts["members"]}
        names = facts.get("embeddings", [])
        embeddings = {name: data[f"embedding_{k}"] for k, name in enumerate(names)}
        return facts, [str(r) for r in data["row_ids"]], data["scores"], members, embeddings


def _parquet_bytes(result: FileResult, facts: dict[str, Any], stamp: dict[str, Any]) -> bytes:
    """The file's rows as the per-window table has them (keys, classes, then each member's
    classes when there are several members, then embeddings), built column by column with
    pyarrow, which is faster than through pandas, and it is written once per file
    (docs/throughput.md, "Figures behind the code's choices")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from birdinfer.output.windows_table import KEYS, check_columns

    columns = stamp["columns"]
    check_columns(columns)
    window = stamp["audio"]["window_seconds"]
    rows = len(result.row_ids)
    starts = np.arange(rows, dtype=np.float64) * window
    keys = [[str(result.path)] * rows, [Path(result.path).stem] * rows, list(result.row_ids)]
    arrays = [pa.array(values, pa.string()) for values in keys]
    arrays += [pa.array(starts), pa.array(starts + window)]
    names = list(KEYS)
    blocks = [(columns, result.scores)]
    if len(stamp["models"]) > 1:  # one member: its scores are the combined ones
        blocks += [
            ([f"member{m}:{c}" for c in columns], result.member_scores[m]) for m in facts["members"]
        ]
    for block_names, values in blocks:
        values = np.asarray(values, dtype=np.float32)
        arrays += [pa.array(values[:, j]) for j in range(len(block_names))]
        names += block_names
    for name, values in result.embeddings.items():  # after the member columns: read by name
        arrays.append(pa.array(list(np.asarray(values, np.float32)), pa.list_(pa.float32())))
        names.append(name)
    table = pa.Table.from_arrays(arrays, names=names)
    table = table.replace_schema_metadata({PARQUET_KEY: json.dumps(facts).encode()})
    sink = pa.BufferOutputStream()
    # Column statistics and dictionary pages cost most of the write for 240 columns of 12
    # floats and help no reader of one file's partition: only the repeated key strings keep
    # a dictionary (docs/throughput.md, "Figures behind the code's choices").
    pq.write_table(table, sink, use_dictionary=["file", "stem"], write_statistics=False)
    return sink.getvalue().to_pybytes()


def _read_parquet(entry: Path):
    import pyarrow.parquet as pq

    from birdinfer.output.windows_table import KEYS

    # One file, read on this thread: `pq.read_table` goes through the dataset layer and a
    # thread pool, slower for a 12-row entry (docs/throughput.md, "Figures behind ...").
    with pq.ParquetFile(entry) as parquet:
        table = parquet.read(use_threads=False)
    facts = json.loads(table.schema.metadata[PARQUET_KEY])
    names = table.column_names
    classes = names[len(KEYS) : len(KEYS) + facts["classes"]]
    position = {name: i for i, name in enumerate(names)}

    def matrix(columns: list[str]) -> np.ndarray:
        if not columns:
            return np.zeros((table.num_rows, 0), np.float32)
        arrays = [table.column(position[c]).to_numpy() for c in columns]
        return np.stack(arrays, axis=1).astype(np.float32)

    scores = matrix(classes)
    embedding_names = facts.get("embeddings", [])
    embeddings = {
        name: np.stack(table.column(name).to_pylist()).astype(np.float32)
        for name in embedding_names
    }
    if len(names) > len(KEYS) + len(classes) + len(embedding_names):  # member columns
        members = {m: matrix([f"member{m}:{c}" for c in classes]) for m in facts["members"]}
    else:
        members = {m: scores for m in facts["members"]}
    row_ids = [str(r) for r in table.column("row_id").to_pylist()]
    return facts, row_ids, scores, members, embeddings


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
