"""Windows for quantization: log-mel windows of real recordings, through the pipeline's front end.

Post-training quantization sets every INT8 range from what the model sees on these windows, so
they come from the user's own soundscapes (decode, mono, resample, 5 s windows, `LogMel` with the
model card's settings), never from random tensors.

`sample_windows` spreads a fixed count over the files of a folder: a seeded file order, a seeded
shuffle of each file's window indices, then one window per file in turn (round-robin), so 300
windows from 600 files touch 300 files and 300 from 4 files take 75 from each. Only the windows
picked are turned into log-mels, and a file is decoded only up to its last picked window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from birdinfer.audio import (
    WindowReader,
    count_windows,
    list_audio_files,
    probe,
    row_ids,
    window_end_label,
)
from birdinfer.config import AudioConfig
from birdinfer.errors import AudioError
from birdinfer.frontend import LogMel
from birdinfer.models.card import ModelCard
from birdinfer.quantize.variants import QuantizeError

log = logging.getLogger(__name__)

MEL_CHUNK = 64  # windows per log-mel call: bounds the FFT's temporary memory


class CalibrationError(QuantizeError, ValueError):
    """No usable windows; the message names the folder and what was wrong."""


@dataclass(frozen=True)
class WindowSet:
    """Model inputs (n, 1, n_mels, frames) float32 and the row id each came from."""

    features: np.ndarray
    row_ids: tuple[str, ...]
    folder: str

    def __len__(self) -> int:
        return len(self.row_ids)


def audio_config_for(card: ModelCard, extensions: Sequence[str] | None = None) -> AudioConfig:
    """The audio settings the model was trained with (its card), as the pipeline would use."""
    if extensions is None:
        return AudioConfig(sample_rate=card.sample_rate, window_seconds=card.window_seconds)
    return AudioConfig(
        sample_rate=card.sample_rate,
        window_seconds=card.window_seconds,
        extensions=tuple(extensions),
    )


def plan_picks(window_counts: Sequence[int], count: int, seed: int) -> list[tuple[int, int]]:
    """(file index, window index) pairs: seeded per-file shuffles taken round-robin over a seeded
    file order, until `count` pairs or every window is taken."""
    rng = np.random.default_rng(seed)
    file_order = [int(f) for f in rng.permutation(len(window_counts))]
    shuffles = {f: rng.permutation(window_counts[f]) for f in file_order}
    picks: list[tuple[int, int]] = []
    depth = 0
    while len(picks) < count:
        took = False
        for f in file_order:
            if depth < window_counts[f] and len(picks) < count:
                picks.append((f, int(shuffles[f][depth])))
                took = True
        if not took:
            break
        depth += 1
    return picks


def sample_windows(
    folder: str | Path, card: ModelCard, count: int = 300, seed: int = 0
) -> WindowSet:
    """`count` log-mel windows spread over the recordings in `folder`, reproducible by `seed`."""
    if count < 1:
        raise CalibrationError(f"calibration count must be >= 1, got {count}")
    audio = audio_config_for(card)
    files, counts = _probe_files(Path(folder), audio)
    picks = plan_picks(counts, count, seed)
    if len(picks) < count:
        log.warning(
            "%s holds only %d windows; calibrating on all of them instead of %d",
            folder,
            len(picks),
            count,
        )
    wanted: dict[int, set[int]] = {}
    for f, w in picks:
        wanted.setdefault(f, set()).add(w)
    decoded: dict[tuple[int, int], np.ndarray] = {}
    for f in sorted(wanted):
        for w, window in _read_picked(files[f], audio, wanted[f]).items():
            decoded[(f, w)] = window
    order = [p for p in picks if p in decoded]
    if not order:
        raise CalibrationError(f"{folder}: no window could be decoded for calibration")
    windows = np.stack([decoded[p] for p in order])
    ids = tuple(f"{files[f].stem}_{window_end_label(w, audio.window_seconds)}" for f, w in order)
    return WindowSet(log_mel(windows, card), ids, str(folder))


def read_all_windows(folder: str | Path, card: ModelCard) -> WindowSet:
    """Every window of every recording in `folder`, in file then time order (a held-out set)."""
    audio = audio_config_for(card)
    files, _ = _probe_files(Path(folder), audio)
    parts, ids = [], []
    for path in files:
        try:
            reader = WindowReader(path, audio)
            windows = np.concatenate(list(reader))
        except AudioError as exc:
            log.warning("held-out set: skipped %s", exc)
            continue
        parts.append(log_mel(windows, card))
        ids += row_ids(path.stem, reader.n_windows, audio.window_seconds)
    if not parts:
        raise CalibrationError(f"{folder}: no recording could be decoded")
    return WindowSet(np.concatenate(parts), tuple(ids), str(folder))


def log_mel(windows: np.ndarray, card: ModelCard) -> np.ndarray:
    """(n, samples) audio -> (n, c, h, w) model inputs, the pipeline's front end; a waveform
    model's inputs are the windows themselves, shaped as its card says."""
    if card.waveform:
        return np.ascontiguousarray(windows, np.float32).reshape(len(windows), *card.input_shape)
    frontend = LogMel(card.mel, card.image)
    chunks = [frontend(windows[i : i + MEL_CHUNK]) for i in range(0, len(windows), MEL_CHUNK)]
    features = np.concatenate(chunks).astype(np.float32, copy=False)
    if features.shape[1:] != tuple(card.input_shape):
        raise CalibrationError(
            f"log-mel windows have shape {features.shape[1:]}, the model expects "
            f"{tuple(card.input_shape)}"
        )
    return features


def _probe_files(folder: Path, audio: AudioConfig) -> tuple[list[Path], list[int]]:
    """Audio files of `folder` with their window counts from the header; bad files skipped."""
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: not a folder of recordings")
    candidates, _ = list_audio_files(folder, audio.extensions)
    files, counts = [], []
    for path in candidates:
        try:
            info = probe(path)
        except AudioError as exc:
            log.warning("skipped %s", exc)
            continue
        n = count_windows(info.frames, info.sample_rate, audio.window_seconds)
        if n > 0:
            files.append(path)
            counts.append(n)
    if not files:
        raise CalibrationError(
            f"{folder}: no readable recordings with extensions {list(audio.extensions)}"
        )
    return files, counts


def _read_picked(path: Path, audio: AudioConfig, wanted: set[int]) -> dict[int, np.ndarray]:
    """The wanted windows of one file; decoding stops after the last of them."""
    found: dict[int, np.ndarray] = {}
    last = max(wanted)
    start = 0
    try:
        for group in WindowReader(path, audio):
            for i in range(group.shape[0]):
                if start + i in wanted:
                    found[start + i] = group[i].copy()
            start += group.shape[0]
            if start > last:
                break
    except AudioError as exc:
        log.warning("calibration: skipped %s", exc)
    return found


# --- the demo's data ----------------------------------------------------------------------------

# Synthetic soundscape ids are seed * 1000 + i: calibration (30,000,000+), the guard's held-out set
# (20,260,000+, the demo's own held-out seed) and the demo model's validation and training
# (900,000-1,001,000, fine-tune included) never overlap.
DEMO_CALIBRATION_SEED = 30000
DEMO_HELDOUT_SEED = 20260


def demo_soundscapes(root: str | Path, files: int, seed: int) -> tuple[Path, Path]:
    """Seeded 60 s synthetic soundscapes with their labels CSV (competition format), written once
    under `root/<seed>x<files>/` and reused after (the generator is deterministic)."""
    from birdinfer.demo import write_soundscapes

    folder = Path(root) / f"{seed}x{files}"
    labels = folder.with_name(f"{folder.name}_labels.csv")
    expected = {f"soundscape_{seed * 1000 + i}.ogg" for i in range(files)}
    present = {p.name for p in folder.glob("*.ogg")} if folder.is_dir() else set()
    if present != expected or not labels.is_file():
        log.info("writing %d synthetic soundscapes (seed %d) to %s", files, seed, folder)
        write_soundscapes(folder, files, seed, seconds=60.0, labels_csv=labels)
    return folder, labels
