"""`birdinfer frontend check`: birdinfer's model input against a reference, stage by stage."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.cli import main
from birdinfer.config import from_dict
from birdinfer.frontend import LogMel, compare_with_array, compare_with_library


def test_a_preset_checked_against_its_library_passes_every_stage(real_windows):
    pytest.importorskip("torchaudio")
    config = from_dict({"mel": {"preset": "birdclef2026_2nd"}})
    result = compare_with_library(real_windows[:2], config.mel, config.image, "torchaudio")
    assert [s.stage for s in result.stages] == ["mel power", "dB", "normalisation", "image"]
    assert result.first_divergence is None, result.describe()


def test_saved_features_that_skip_the_normalisation_are_named(real_windows):
    config = from_dict({"mel": {"normalization": ["standardize"]}})
    frontend = LogMel(config.mel)
    saved = frontend.scaled(real_windows[:2])  # the training code stopped at dB
    result = compare_with_array(real_windows[:2], config.mel, config.image, saved, "saved.npy")
    assert result.first_divergence is not None and result.first_divergence.stage == "image"
    assert "'dB' stage" in result.note


def test_saved_features_that_match_pass(real_windows):
    config = from_dict({"mel": {"preset": "librosa"}})
    saved = LogMel(config.mel, config.image)(real_windows[:2])
    result = compare_with_array(real_windows[:2], config.mel, config.image, saved, "saved.npy")
    assert result.first_divergence is None


def test_the_cli_exits_1_and_names_the_stage_when_features_diverge(shared_audio, tmp_path, capsys):
    config = from_dict({"mel": {"preset": "librosa"}})
    from birdinfer.audio import decode_windows
    from birdinfer.config import AudioConfig

    windows = decode_windows(shared_audio / "1min.wav", AudioConfig())[:2]
    wrong = LogMel(config.mel, config.image)(windows) * 1.01
    np.save(tmp_path / "train.npy", wrong)
    code = main(
        [
            "frontend",
            "check",
            str(shared_audio / "1min.wav"),
            "--model",
            "builtin:demo",
            "--reference",
            str(tmp_path / "train.npy"),
            "--window-count",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "first divergence: image" in out


# --- issue 21, point 14: bad counts and references are one-line errors -------------------------


@pytest.fixture
def recording(tmp_path):
    import soundfile as sf

    noise = np.random.default_rng(0).standard_normal(32000 * 12).astype(np.float32) * 0.1
    path = tmp_path / "clip.wav"
    sf.write(path, noise, 32000)
    return path


def check_error(capsys, *args) -> str:
    assert main(["frontend", "check", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("count", ["0", "-3"])
def test_a_window_count_below_one_is_refused(recording, capsys, count):
    err = check_error(capsys, str(recording), "--model", "builtin:demo", "--window-count", count)
    assert err == f"error: --window-count {count}: the windows to compare must be 1 or more"


def test_a_reference_holding_pickled_objects_is_refused_unread(recording, tmp_path, capsys):
    reference = tmp_path / "train.npy"
    np.save(reference, np.array([{"features": 1}], dtype=object), allow_pickle=True)
    err = check_error(
        capsys, str(recording), "--model", "builtin:demo", "--reference", str(reference)
    )
    assert err.startswith(f"error: {reference} (--reference): holds pickled objects")
    assert "does not unpickle" in err


def test_a_missing_or_non_numeric_reference_is_named(recording, tmp_path, capsys):
    missing = tmp_path / "missing.npy"
    err = check_error(
        capsys, str(recording), "--model", "builtin:demo", "--reference", str(missing)
    )
    assert err.startswith(f"error: {missing} (--reference): cannot be read as a .npy")
    text = tmp_path / "names.npy"
    np.save(text, np.array(["a", "b"]))
    err = check_error(capsys, str(recording), "--model", "builtin:demo", "--reference", str(text))
    assert err.startswith(f"error: {text} (--reference): holds <U1, not numbers")
