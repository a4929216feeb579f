"""Two top solutions, end to end: birdinfer's run against our re-implementation of each one's
own inference (solution_references.py, cited step by step), the same tiny torch stand-in on both
sides (solution_standins.py), real recordings from ../shared/audio and audio made here. Every
row must agree within 1e-4.

- 2025 2nd place: a waveform model exported with `--factory --waveform`, each window
  peak-normalised (audio.normalize: peak), the last partial window padded at its start
  (audio.last_window: pad_start).
- 2026 2nd place: min-max log-mels whose dB floor is taken over the file's windows
  (mel.top_db_scope: file), CONF_SCALE (postprocess.file_scale_top_k: 2), floor(duration / 5)
  rows for exp85 (audio.last_window: drop), and the per-taxon rank blend of two members
  (inference.taxonomy, models[].taxon_weights, rank_ties: average, rank_clip: 1e-5).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdinfer.config import from_dict
from birdinfer.presets import TORCHAUDIO

pytestmark = [pytest.mark.needs_torch, pytest.mark.slow]

TOLERANCE = 1e-4
CLASSES = [f"sp{i}" for i in range(6)]
HERE = Path(__file__).resolve().parent
REAL = ("1min.wav", "great_plains_toad.wav", "birds_10s.wav")  # 32, 44.1, 32 kHz; two partial


def _chirps(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Chirps and a warbling tone over noise, with a quiet stretch: audio of our own making."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    x = 0.02 * rng.standard_normal(t.size)
    for start in rng.uniform(0, seconds - 1, 6):
        f0, f1 = rng.uniform(1500, 9000, 2)
        env = np.clip(1 - np.abs((t - start - 0.3) / 0.3), 0, None)
        x += 0.4 * env * np.sin(2 * np.pi * (f0 * (t - start) + (f1 - f0) / 1.2 * (t - start) ** 2))
    x += 0.05 * np.sin(2 * np.pi * 3000 * t + 4 * np.sin(2 * np.pi * 6 * t))
    x[(t > 2) & (t < 3)] *= 0.01
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("solutions_audio")
    sf.write(folder / "made_48k.wav", _chirps(17.3, 48000, 1), 48000)
    sf.write(folder / "made_32k.wav", _chirps(12.6, 32000, 2), 32000)
    shared = HERE.parent.parent.parent / "shared" / "audio"
    for name in REAL:
        if (shared / name).is_file():
            shutil.copy(shared / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def classes_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("classes") / "classes.txt"
    path.write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return path


def _run(config: dict, folder: Path, out: Path) -> pd.DataFrame:
    from birdinfer.runner import run

    settings = {
        "input_dir": str(folder),
        "output": {"submission": str(out), "progress": False},
        "executor": {"kind": "engine"},
        "mel": None,
        **config,
    }
    run(from_dict(settings))
    return pd.read_csv(out, dtype={"row_id": str})


def _by_file(frame: pd.DataFrame, stem: str) -> np.ndarray:
    rows = frame[frame["row_id"].str.rsplit("_", n=1).str[0] == stem]
    return rows[CLASSES].to_numpy(np.float64)


# --- 2025 2nd place --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wave_2025(tmp_path_factory, classes_csv) -> Path:
    from birdinfer.config import MelConfig
    from birdinfer.models.export_job import ExportJob, run_export

    out = tmp_path_factory.mktemp("wave2025") / "wave2025.onnx"
    job = ExportJob(
        classes=classes_csv,
        out=out,
        mel=MelConfig(),
        window_seconds=5.0,
        factory=f"{HERE / 'solution_standins.py'}:build_2025",
        waveform=True,
        openvino=False,
    )
    return run_export(job).onnx_path


def _2025_config(model: Path, **audio) -> dict:
    return {"models": [{"path": str(model)}], "audio": audio}


def test_2025_2nd_place_rows_match_their_pipeline(wave_2025, recordings, tmp_path):
    from tests.scorer.solution_references import rows_2025
    from tests.scorer.solution_standins import build_2025

    config = _2025_config(wave_2025, normalize="peak", last_window="pad_start")
    ours = _run(config, recordings, tmp_path / "sub.csv")
    model = build_2025(len(CLASSES))
    worst = {}
    for path in sorted(recordings.iterdir()):
        theirs = rows_2025(path, model)
        mine = _by_file(ours, path.stem)
        assert mine.shape == theirs.shape, path.name
        worst[path.name] = float(np.abs(mine - theirs).max())
    assert max(worst.values()) <= TOLERANCE, worst


def test_2025_2nd_place_needs_both_the_normalize_and_the_left_pad(wave_2025, recordings, tmp_path):
    """Without either setting some row is far off: the test above can fail."""
    from tests.scorer.solution_references import rows_2025
    from tests.scorer.solution_standins import build_2025

    model = build_2025(len(CLASSES))
    path = recordings / "made_48k.wav"  # 17.3 s: a partial last window
    theirs = rows_2025(path, model)
    for audio in ({"last_window": "pad_start"}, {"normalize": "peak"}):
        ours = _run(_2025_config(wave_2025, **audio), recordings, tmp_path / "sub.csv")
        assert np.abs(_by_file(ours, path.stem) - theirs).max() > 1e-2, audio


# --- 2026 2nd place --------------------------------------------------------------------------

TORCHAUDIO_MEL = {
    **TORCHAUDIO,
    "power": 2.0,
    "top_db": 80.0,
    "normalization": ["minmax"],
    "top_db_scope": "file",
}
SHARED = {**TORCHAUDIO_MEL, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "fmin": 20}
EXP85 = {**TORCHAUDIO_MEL, "n_fft": 4096, "hop_length": 1252, "n_mels": 224, "fmin": 0}


def _export_2026(folder: Path, mel: dict, build) -> Path:
    from birdinfer.config import ImageConfig, from_dict
    from birdinfer.models.export import export, make_card

    settings = from_dict({"mel": {**mel, "fmax": 16000}})
    card = make_card("mel2026", CLASSES, settings.mel, 5.0, image=ImageConfig(channels=3))
    return export(build(len(CLASSES)), card, folder / "model.onnx", openvino=False).onnx_path


@pytest.fixture(scope="module")
def mel_2026(tmp_path_factory) -> dict[str, Path]:
    from tests.scorer.solution_standins import build_2026, build_2026_second

    root = tmp_path_factory.mktemp("mel2026")
    for name in ("a", "b", "exp85", "a_window"):
        (root / name).mkdir()
    per_window = {**SHARED, "top_db_scope": "window"}
    return {
        "a": _export_2026(root / "a", SHARED, build_2026),
        "a_window": _export_2026(root / "a_window", per_window, build_2026),
        "b": _export_2026(root / "b", SHARED, build_2026_second),
        "exp85": _export_2026(root / "exp85", EXP85, build_2026),
    }


@pytest.fixture(scope="module")
def files_32k(recordings, tmp_path_factory) -> Path:
    """Their soundscapes are 32 kHz: no resampler between the two sides."""
    folder = tmp_path_factory.mktemp("solutions_32k")
    for path in recordings.iterdir():
        if sf.info(str(path)).samplerate == 32000:
            shutil.copy(path, folder / path.name)
    return folder


def test_2026_2nd_place_exp85_rows_match_their_notebook(mel_2026, files_32k, tmp_path):
    from tests.scorer.solution_references import EXP85_MEL, rows_2026
    from tests.scorer.solution_standins import build_2026

    config = {
        "models": [{"path": str(mel_2026["exp85"])}],
        "audio": {"last_window": "drop"},
        "postprocess": {"file_scale_top_k": 2},
    }
    ours = _run(config, files_32k, tmp_path / "sub.csv")
    model = build_2026(len(CLASSES))
    worst = {}
    for path in sorted(files_32k.iterdir()):
        theirs = rows_2026(path, model, EXP85_MEL, floor=True)
        mine = _by_file(ours, path.stem)
        assert mine.shape == theirs.shape, path.name
        worst[path.name] = float(np.abs(mine - theirs).max())
    assert max(worst.values()) <= TOLERANCE, worst


def test_2026_2nd_place_taxon_rank_blend_matches_their_ensembling(mel_2026, files_32k, tmp_path):
    """Each member's rows match their notebook's within 1e-4; the blend of those rows is their
    "Ensembling" formula. (Ranks jump by 1/rows where two rows' scores are closer than the
    members' float32 differences, so the blend is compared over the same member rows.)"""
    from tests.scorer.solution_references import SHARED_MEL, rows_2026, taxon_rank_blend
    from tests.scorer.solution_standins import build_2026, build_2026_second

    taxa = ["Aves", "Aves", "Insecta", "Amphibia", "Insecta", "Mammalia"]
    taxonomy = tmp_path / "taxonomy.csv"
    pd.DataFrame({"primary_label": CLASSES, "class_name": taxa}).to_csv(taxonomy, index=False)
    weights = [{"Aves": 0.25, "Insecta": 1.25, "Amphibia": 0.2}, {"Aves": 0.2, "Insecta": 0.17}]
    paths = sorted(files_32k.iterdir())
    scale = {"postprocess": {"file_scale_top_k": 2}}
    alone = []
    for key, build in (("a", build_2026), ("b", build_2026_second)):
        frame = _run({"models": [str(mel_2026[key])], **scale}, files_32k, tmp_path / "one.csv")
        mine = np.concatenate([_by_file(frame, p.stem) for p in paths])
        model = build(len(CLASSES))
        theirs = np.concatenate([rows_2026(p, model, SHARED_MEL, floor=False) for p in paths])
        assert np.abs(mine - theirs).max() <= TOLERANCE, key
        alone.append(mine)
    config = {
        "models": [
            {"path": str(mel_2026[key]), "taxon_weights": w}
            for key, w in zip(("a", "b"), weights, strict=True)
        ],
        **scale,
        "inference": {
            "combine": "rank_mean",
            "rank_ties": "average",
            "rank_clip": 1e-5,
            "taxonomy": str(taxonomy),
        },
    }
    blended = _run(config, files_32k, tmp_path / "sub.csv")
    mine = np.concatenate([_by_file(blended, p.stem) for p in paths])
    # Their member weight for a taxon it does not list is 1.0: so is ours (models[].weight).
    theirs = taxon_rank_blend(alone, weights, taxa)
    assert mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() <= 1e-6
    # Not the plain rank mean: the taxon weights moved some column.
    config["inference"].pop("taxonomy")
    plain = _run(config, files_32k, tmp_path / "plain.csv")
    assert np.abs(np.concatenate([_by_file(plain, p.stem) for p in paths]) - mine).max() > 1e-3


def test_2026_2nd_place_needs_the_file_wide_db_floor(mel_2026, files_32k, tmp_path):
    """Per-window floors (birdinfer's default) differ from their notebook's batched floor."""
    from tests.scorer.solution_references import SHARED_MEL, rows_2026
    from tests.scorer.solution_standins import build_2026

    path = files_32k / "made_32k.wav"  # a quiet second: its window's own floor sits lower
    config = {"models": [str(mel_2026["a_window"])], "postprocess": {"file_scale_top_k": 2}}
    ours = _run(config, files_32k, tmp_path / "sub.csv")
    theirs = rows_2026(path, build_2026(len(CLASSES)), SHARED_MEL, floor=False)
    assert np.abs(_by_file(ours, path.stem) - theirs).max() > 1e-3
