"""Helpers for the hostile-folder tests (issue 12): good files beside a bad one, run through
`run()`, and the checks every case shares (the good rows kept, the bad file's outcome)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from birdinfer.runner import run
from tests.helpers import make_config, write_tone

GOOD = {"good_a.wav": (7.0, 1000.0), "good_b.flac": (3.0, 3000.0)}  # 2 rows and 1 row
# One window per model call and one worker: scores do not depend on what else is in the run.
SERIAL = {"batch_size": 1, "workers": 1, "threads": 1}
TIGHT = 1e-6


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging (SIGALRM: pytest runs tests in the main thread)."""

    def expire(_signum, _frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def write_good(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (seconds, freq) in GOOD.items():
        write_tone(folder / name, seconds, freq=freq)
    return folder


def copy_good(good: Path, folder: Path) -> Path:
    shutil.copytree(good, folder)
    return folder


def run_folder(folder: Path, model: Path, out: Path, **sections):
    sections["inference"] = {**SERIAL, **sections.get("inference", {})}
    with time_limit(120):
        return run(make_config(folder, model, out / "submission.csv", **sections))


def assert_good_rows_intact(result, reference) -> None:
    """The reference's rows are all in `result`, in order, with the same scores."""
    frame = result.submission.set_index("row_id")
    expected = reference.submission.set_index("row_id")
    assert [r for r in frame.index if r in expected.index] == list(expected.index)
    np.testing.assert_allclose(
        frame.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=0, atol=TIGHT
    )


def rows_of(result, stem: str) -> list[str]:
    return [r for r in result.submission["row_id"] if r.rsplit("_", 1)[0] == stem]


def reported_warnings(result, path: Path) -> list[str]:
    warnings = json.loads(result.report_path.read_text())["warnings"]
    return [w["warning"] for w in warnings if w["path"] == str(path)]


def read_back(path: Path) -> pd.DataFrame:
    """The written submission as Kaggle reads it (row ids and class codes as text)."""
    return pd.read_csv(path, dtype={"row_id": str})


# --- FLAC headers that lie ------------------------------------------------------------------

TOTAL_END = 26  # STREAMINFO's 36-bit total samples ends at this byte of the file


def flac_bytes(seconds: float, freq: float = 1500.0, rate: int = 32000) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format="FLAC")
    return buffer.getvalue()


def with_total(data: bytes, total: int) -> bytes:
    """The FLAC `data` with STREAMINFO's total samples set to `total` (0: unknown)."""
    head = bytearray(data)
    field = int.from_bytes(head[18:TOTAL_END], "big")
    field = (field & ~((1 << 36) - 1)) | total
    head[18:TOTAL_END] = field.to_bytes(8, "big")
    return bytes(head)


def damaged_middle(data: bytes) -> bytes:
    """Bytes flipped in the middle of the stream: libFLAC's frame CRC refuses that frame."""
    rng = np.random.default_rng(6)
    damaged = bytearray(data)
    for offset in rng.integers(0, 64, 16):
        damaged[len(data) // 2 + int(offset)] = int(rng.integers(0, 256))
    return bytes(damaged)


def sample_submission(path: Path, row_ids: list[str], classes: list[str]) -> Path:
    frame = pd.DataFrame(0.0, index=range(len(row_ids)), columns=classes)
    frame.insert(0, "row_id", row_ids)
    frame.to_csv(path, index=False)
    return path


def nothing_written_in(folder: Path) -> bool:
    return not folder.exists() or not any(os.scandir(folder))


# --- small models -----------------------------------------------------------------------------

# A coarse mel in absolute dB (no per-window normalisation): a window's mean says how loud it is.
LEVEL_MEL = dict(n_fft=256, hop_length=256, n_mels=8, fmin=20, fmax=16000, ref=1.0)


def pooled_onnx(
    path: Path,
    classes: list[str],
    channels: int = 1,
    below: float | None = None,
    value: float = float("nan"),
    seed: int = 0,
) -> Path:
    """A cheap model with a valid card: the input's mean through one linear layer. With `below`,
    windows whose mean level is under it get `value` (NaN, Inf) for every class; `channels` is
    the input channels its graph and card declare."""
    import dataclasses

    import pytest

    torch = pytest.importorskip("torch")
    from birdinfer.config import MelConfig
    from birdinfer.models.export import export_onnx, make_card

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(1, len(classes))

        def forward(self, x):
            level = x.mean(dim=(1, 2, 3)).unsqueeze(1)
            logits = self.linear(level / 10.0)
            if below is None:
                return logits
            return torch.where(level < below, torch.full_like(logits, value), logits)

    torch.manual_seed(seed)
    mel = MelConfig(normalization="none", **LEVEL_MEL)
    card = make_card("pooled", classes, mel, 5.0)
    card = dataclasses.replace(card, input_shape=(channels, *card.input_shape[1:]))
    export_onnx(Pooled().eval(), card, path)
    return path


def mean_level(samples: np.ndarray) -> float:
    """The level `pooled_onnx` compares with `below`, for 5 s windows of `samples`."""
    from birdinfer.config import MelConfig
    from birdinfer.frontend import LogMel

    windows = samples[: len(samples) // 160000 * 160000].reshape(-1, 160000)
    return float(LogMel(MelConfig(normalization="none", **LEVEL_MEL))(windows).mean())
