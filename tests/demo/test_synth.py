"""Behaviour of the synthetic soundscape generator: determinism, labels, learnability, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdinfer.demo import (
    DEMO_SPECIES,
    Species,
    make_soundscape,
    window_labels,
    windows_covering,
    write_soundscapes,
)
from birdinfer.demo.synth import SAMPLE_RATE, CallEvent, render_call

CODES = [sp.code for sp in DEMO_SPECIES]


@pytest.fixture(scope="module")
def corpus():
    """Ten seeded one-minute soundscapes with their window labels."""
    scapes = [make_soundscape(seed) for seed in range(10)]
    labels = np.concatenate([window_labels(s.events, 12, CODES) for s in scapes])
    return scapes, labels


# --- determinism and audio format --------------------------------------------------------------


def test_same_seed_gives_bit_identical_audio_and_events():
    a, b = make_soundscape(3, seconds=20.0), make_soundscape(3, seconds=20.0)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.events == b.events


def test_different_seeds_give_different_soundscapes():
    a, b = make_soundscape(3, seconds=20.0), make_soundscape(4, seconds=20.0)
    assert not np.array_equal(a.audio, b.audio)
    assert a.events != b.events


@pytest.mark.parametrize("seconds", [60.0, 12.3, 0.7])
def test_audio_is_float32_finite_mono_within_peak_and_exact_length(seconds):
    scape = make_soundscape(11, seconds=seconds)
    assert scape.audio.dtype == np.float32
    assert scape.audio.ndim == 1
    assert len(scape.audio) == round(seconds * SAMPLE_RATE)
    assert scape.sample_rate == SAMPLE_RATE
    assert np.isfinite(scape.audio).all()
    assert 0 < np.abs(scape.audio).max() <= 1.0


def test_loud_calls_are_scaled_so_every_soundscape_peaks_at_most_one(corpus):
    scapes, _ = corpus  # several of these have calls that would peak above 1.0 unscaled
    assert all(np.abs(s.audio).max() <= 1.0 for s in scapes)


def test_events_lie_inside_the_audio_and_use_known_codes(corpus):
    scapes, _ = corpus
    for scape in scapes:
        duration = len(scape.audio) / scape.sample_rate
        for ev in scape.events:
            assert ev.species in CODES
            assert 0 <= ev.start < ev.end <= duration


def test_zero_call_rate_gives_no_events():
    assert make_soundscape(5, seconds=10.0, calls_per_minute=0.0).events == ()


# --- windows and labels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(60.0, 12), (60.000000001, 12), (12.0, 3), (10.01, 3), (5.0, 1), (0.5, 1), (0.0, 1)],
)
def test_windows_covering_counts_a_partial_final_window(seconds, expected):
    assert windows_covering(seconds) == expected


@pytest.mark.parametrize(
    ("start", "end", "windows"),
    [
        (4.0, 6.0, {0, 1}),  # straddles a boundary with 1 s on each side
        (9.8, 10.6, {2}),  # only 0.2 s in window 1: below the 0.3 s minimum
        (14.9, 15.1, {2, 3}),  # 0.2 s call split evenly: needs only half its length (0.1 s)
        (14.85, 15.05, {2}),  # same length, 0.15 s / 0.05 s: the smaller side misses
        (12.0, 12.1, {2}),  # shorter than the minimum overlap, wholly inside one window
        (17.2, 18.0, {3}),  # in the partial final window of an 18 s file
        (19.9, 22.0, set()),  # 0.1 s inside the last window, the rest beyond the file
        (3.0, 3.0, set()),  # zero-length events carry no label
    ],
)
def test_window_labels_of_single_calls(start, end, windows):
    labels = window_labels([CallEvent("a", start, end)], windows_covering(18.0), ["a"])
    assert labels.shape == (4, 1)
    assert set(np.flatnonzero(labels[:, 0])) == windows


def test_window_labels_matrix_for_several_species():
    events = [
        CallEvent("a", 4.0, 6.0),
        CallEvent("41663", 9.8, 10.6),
        CallEvent("c", 14.9, 15.1),
        CallEvent("unknown", 0.0, 18.0),  # codes outside class_codes are ignored
        CallEvent("41663", 17.2, 18.0),
    ]
    expected = np.array(
        [[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1]],
        dtype=np.float32,
    )
    labels = window_labels(events, 4, ["a", "41663", "c"])
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels, expected)


def test_every_species_appears_and_windows_are_empty_or_mixed(corpus):
    _, labels = corpus
    assert (labels.sum(axis=0) > 0).all(), "a demo species never calls in ten soundscapes"
    per_window = labels.sum(axis=1)
    assert (per_window == 0).sum() >= 3, "too few empty windows"
    assert (per_window >= 2).sum() >= 10, "too few windows with two or more species"
    assert (per_window == 0).mean() < 0.5, "most windows are empty"


# --- the demo task is learnable ----------------------------------------------------------------


def _log_band_energies(call: np.ndarray, n_bands: int = 24) -> np.ndarray:
    """Log energy in log-spaced bands from 100 Hz to 16 kHz, normalised to the call's total."""
    power = np.abs(np.fft.rfft(call)) ** 2
    freqs = np.fft.rfftfreq(len(call), 1 / SAMPLE_RATE)
    edges = np.geomspace(100.0, 16000.0, n_bands + 1)
    band = np.digitize(freqs, edges)  # 0 below 100 Hz, n_bands + 1 above 16 kHz
    bands = np.bincount(band, weights=power, minlength=n_bands + 2)[1:-1]
    return np.log10(bands / bands.sum() + 1e-8)


def _calls(seed: int, per_species: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for label, sp in enumerate(DEMO_SPECIES):
        for _ in range(per_species):
            feats.append(_log_band_energies(render_call(sp, rng)))
            labels.append(label)
    return np.array(feats), np.array(labels)


def test_isolated_calls_peak_inside_their_species_band():
    rng = np.random.default_rng(0)
    for sp in DEMO_SPECIES:
        calls = [render_call(sp, rng, seconds=1.0) for _ in range(8)]
        mean_power = np.mean([np.abs(np.fft.rfft(c)) ** 2 for c in calls], axis=0)
        peak_hz = np.fft.rfftfreq(SAMPLE_RATE, 1 / SAMPLE_RATE)[np.argmax(mean_power)]
        assert sp.f_low * 0.9 <= peak_hz <= sp.f_high * 1.1, sp.code


def test_nearest_centroid_on_band_energies_separates_species():
    train_x, train_y = _calls(seed=1, per_species=12)
    test_x, test_y = _calls(seed=2, per_species=12)
    centroids = np.array([train_x[train_y == k].mean(axis=0) for k in range(len(DEMO_SPECIES))])
    distances = ((test_x[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = (distances.argmin(axis=1) == test_y).mean()
    assert accuracy >= 0.95


def test_calls_raise_energy_in_their_band(corpus):
    """Calls are mixed at a real SNR: their band is louder during the call than on average."""
    scapes, _ = corpus
    by_code = {sp.code: sp for sp in DEMO_SPECIES}
    ratios = []
    for scape in scapes[:4]:
        freqs = np.fft.rfftfreq(len(scape.audio), 1 / SAMPLE_RATE)
        spectrum = np.abs(np.fft.rfft(scape.audio)) ** 2
        for ev in scape.events:
            sp = by_code[ev.species]
            seg = scape.audio[int(ev.start * SAMPLE_RATE) : int(ev.end * SAMPLE_RATE)]
            seg_freqs = np.fft.rfftfreq(len(seg), 1 / SAMPLE_RATE)
            seg_band = (seg_freqs >= sp.f_low) & (seg_freqs <= sp.f_high)
            band = (freqs >= sp.f_low) & (freqs <= sp.f_high)
            seg_power = (np.abs(np.fft.rfft(seg)) ** 2)[seg_band].sum() / len(seg) ** 2
            ratios.append(seg_power / (spectrum[band].sum() / len(scape.audio) ** 2))
    assert np.median(ratios) > 2.0


# --- validation --------------------------------------------------------------------------------


def test_unknown_call_kind_raises_value_error():
    with pytest.raises(ValueError, match="kind"):
        Species("x", "x", "song", 1000.0, 2000.0, 0.5, 1.0)


def test_negative_seed_raises_value_error():
    with pytest.raises(ValueError, match="seed"):
        make_soundscape(-1, seconds=1.0)


def test_sample_rate_below_a_species_band_raises_value_error():
    with pytest.raises(ValueError, match="Nyquist"):
        make_soundscape(0, seconds=5.0, sample_rate=16000)


def test_unknown_file_format_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_soundscapes(tmp_path, 1, seed=1, seconds=1.0, fmt="mp3")


# --- files -------------------------------------------------------------------------------------


def test_write_soundscapes_round_trips_ogg_and_solution_labels(tmp_path):
    labels_csv = tmp_path / "solution.csv"
    paths = write_soundscapes(tmp_path / "audio", 2, seed=7, seconds=12.0, labels_csv=labels_csv)

    assert [p.name for p in paths] == ["soundscape_7000.ogg", "soundscape_7001.ogg"]
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == [p.name for p in paths]
    for path in paths:
        audio, sr = sf.read(path, dtype="float32")
        assert sr == SAMPLE_RATE
        assert audio.ndim == 1
        assert abs(len(audio) - 12 * SAMPLE_RATE) <= 4

    solution = pd.read_csv(labels_csv, dtype=str)
    assert list(solution.columns) == ["row_id", *CODES]
    assert solution["row_id"].tolist() == [
        f"soundscape_{file_id}_{end}" for file_id in (7000, 7001) for end in (5, 10, 15)
    ]
    expected = np.concatenate(
        [window_labels(make_soundscape(i, seconds=12.0).events, 3, CODES) for i in (7000, 7001)]
    )
    np.testing.assert_array_equal(solution[CODES].to_numpy().astype(np.float32), expected)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_write_soundscapes_lossless_formats_keep_the_samples(tmp_path, fmt):
    (path,) = write_soundscapes(tmp_path, 1, seed=2, seconds=3.0, fmt=fmt)
    audio, sr = sf.read(path, dtype="float32")
    assert sr == SAMPLE_RATE
    reference = make_soundscape(2000, seconds=3.0).audio
    np.testing.assert_allclose(audio, reference, atol=1.5 / 32768)
