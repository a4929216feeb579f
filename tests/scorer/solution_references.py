"""Our own re-implementations of two top solutions' inference, step for step as their public
code does it (cited per function; their code is not copied). The end-to-end tests score the
same audio with the same torch stand-in through birdinfer and through these, row by row.

Checked once against the solutions' own code run from their repositories (not part of the test
suite: it needs their trees): see docs/frontends.md, "Two top solutions end to end".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

SAMPLE_RATE, WINDOW_SECONDS = 32000, 5


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).astype(np.float32)


# --- 2025 2nd place (VSydorskyy/BirdCLEF_2025_2nd_place) -----------------------------------------


def windows_2025(path: Path) -> np.ndarray:
    """The model inputs of one file as their test dataset makes them:
    code_base/utils/audio_utils.py `load_pp_audio` (librosa.load at 32 kHz, mono);
    code_base/datasets/wave_dataset.py `WaveAllFileDataset`: ceil(duration / 5 s) pieces
    starting every 5 s, `_prepare_sample_piece` zero-pads a short piece on the LEFT, and
    `late_normalize` applies librosa.util.normalize to each piece (inference_configs/
    selected_eca.py sets late_normalize: True)."""
    import librosa

    audio, _ = librosa.load(str(path), sr=SAMPLE_RATE)
    duration = librosa.get_duration(path=str(path))
    segment = SAMPLE_RATE * WINDOW_SECONDS
    out = []
    for i in range(math.ceil(duration / WINDOW_SECONDS)):
        piece = audio[segment * i : segment * i + segment]
        if piece.shape[0] < segment:
            piece = np.pad(piece, (segment - piece.shape[0], 0))
        out.append(librosa.util.normalize(piece))
    return np.stack(out).astype(np.float32)


def rows_2025(path: Path, model: torch.nn.Module) -> np.ndarray:
    """Sigmoid of the model's logits per piece (code_base/inefernce/inference_class.py)."""
    with torch.no_grad():
        logits = model(torch.from_numpy(windows_2025(path))).numpy()
    return _sigmoid(logits)


# --- 2026 2nd place (FlorentinGe/Birdclef2026-2ndplace) ------------------------------------------
# notebooks/"2nd place ensemble inference script.py": the shared v2_s/NFNet section
# (`_load_and_chunk`, `_to_mel_batch`, `_proc_file`), the exp85 section (`load_and_chunk` with
# floor(duration / 5 s) chunks, N_FFT 4096, HOP 1252, N_MELS 224, FMIN 0) and "Ensembling".

SHARED_MEL = dict(n_fft=2048, hop_length=512, n_mels=128, f_min=20, f_max=16000)
EXP85_MEL = dict(n_fft=4096, hop_length=1252, n_mels=224, f_min=0, f_max=16000)


def chunks_2026(path: Path, floor: bool) -> torch.Tensor:
    """torchaudio.load (read here with soundfile: the same float32 samples for WAV), mean over
    channels, torchaudio.functional.resample to 32 kHz, zero-padded on the right to whole 5 s
    chunks; `floor` (exp85) keeps floor(samples / chunk) of them."""
    import torchaudio

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wav = torch.from_numpy(audio.T.copy()).mean(dim=0, keepdim=True)
    if rate != SAMPLE_RATE:
        wav = torchaudio.functional.resample(wav, rate, SAMPLE_RATE)
    chunk = SAMPLE_RATE * WINDOW_SECONDS
    flat = wav.squeeze(0)
    n_chunks = flat.shape[0] // chunk
    if flat.shape[0] % chunk:
        flat = torch.nn.functional.pad(flat, (0, chunk - flat.shape[0] % chunk))
    chunks = flat.reshape(-1, chunk)
    return chunks[:n_chunks] if floor else chunks


def mel_batch_2026(chunks: torch.Tensor, mel: dict) -> np.ndarray:
    """T.MelSpectrogram over the file's (chunks, samples) batch, then T.AmplitudeToDB(top_db=80)
    on that 3-D batch (one floor for the whole file), min-max per chunk with 1e-6, 3 channels."""
    import torchaudio.transforms as T

    spec = T.MelSpectrogram(sample_rate=SAMPLE_RATE, **mel)(chunks)
    spec = T.AmplitudeToDB(top_db=80)(spec)
    low = spec.flatten(1).min(dim=1).values[:, None, None]
    high = spec.flatten(1).max(dim=1).values[:, None, None]
    spec = (spec - low) / (high - low + 1e-6)
    return spec.unsqueeze(1).repeat(1, 3, 1, 1).numpy().astype(np.float32)


def rows_2026(path: Path, model: torch.nn.Module, mel: dict, floor: bool, top_k: int = 2):
    """One member's rows for one file: sigmoid (logits clipped to +-50), then CONF_SCALE: each
    chunk times the per-class mean of the file's top-k chunks."""
    batch = mel_batch_2026(chunks_2026(path, floor), mel)
    with torch.no_grad():
        probs = _sigmoid(model(torch.from_numpy(batch)).numpy())
    top_k_mean = np.sort(probs, axis=0)[-top_k:].mean(axis=0)
    return probs * top_k_mean[None, :]


def taxon_rank_blend(
    members: list[np.ndarray], weights: list[dict[str, float]], taxa: list[str]
) -> np.ndarray:
    """ "Ensembling": each member's scores clipped to [1e-5, 1 - 1e-5], ranked per column over
    every row (pandas rank(pct=True)), then sum(w * r) / sum(w) with each member's weight for
    the column's taxon (taxonomy.csv class_name; .get(taxon, 1.0))."""
    total, blended = 0.0, 0.0
    for scores, by_taxon in zip(members, weights, strict=True):
        p = np.clip(scores, 1e-5, 1 - 1e-5)
        r = pd.DataFrame(p).rank(axis=0, pct=True).to_numpy(np.float32)
        w = np.array([by_taxon.get(t, 1.0) for t in taxa], dtype=np.float32)
        total = total + w
        blended = blended + w * r
    return (blended / total).astype(np.float32)
