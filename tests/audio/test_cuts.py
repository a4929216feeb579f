"""One decode, several members' inputs: each cut's windows are what a reader of that geometry
alone would give, and a run's own cut is exactly WindowReader's."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.audio import Cut, RowReader, WindowReader
from birdinfer.config import AudioConfig
from tests.helpers import write_tone

SETTINGS = {
    "plain rows": {},
    "context": {"context_seconds": 2.5},
    "TTA shifts with context": {"context_seconds": 1.0, "tta_shifts": (-2.5, 0.0, 2.5)},
    "decoded in short blocks": {"block_seconds": 6.0, "context_seconds": 7.5},
}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cuts")
    rng = np.random.default_rng(3)
    native = folder / "native.wav"
    write_tone(native, 23.3, freq=900.0, subtype="FLOAT")
    noisy = folder / "at44k.wav"
    import soundfile as sf

    sf.write(str(noisy), (0.1 * rng.standard_normal(round(17.2 * 44100))).astype("f4"), 44100)
    return [native, noisy]


def rows_of(reader: RowReader, cut: Cut) -> np.ndarray:
    return np.concatenate([span.windows(cut) for span in reader.spans()])


@pytest.mark.parametrize("label", list(SETTINGS))
def test_a_runs_own_cut_gives_window_readers_inputs_exactly(recordings, label):
    config = AudioConfig(**SETTINGS[label])
    for path in recordings:
        expected = np.concatenate(list(WindowReader(path, config)))
        reader = RowReader(path, config, [Cut.of(config)])
        np.testing.assert_array_equal(rows_of(reader, Cut.of(config)), expected)
        assert reader.n_windows * config.views == len(expected)


def test_several_cuts_come_from_one_decode(recordings):
    """A 5 s row cut, a 20 s centred cut with TTA and a 10 s cut, all from one reader: each
    equals the inputs of a reader with that member's settings alone."""
    plain = AudioConfig(block_seconds=7.0)
    long = AudioConfig(block_seconds=7.0, context_seconds=7.5, tta_shifts=(-1.0, 0.0))
    ten = AudioConfig(block_seconds=7.0, context_seconds=2.5)
    cuts = [Cut.of(plain), Cut.of(long), Cut.of(ten)]
    for path in recordings:
        reader = RowReader(path, plain, cuts)
        spans = list(reader.spans())
        assert len(spans) > 1  # rows come out as blocks are decoded, not at the end
        for cut, config in zip(cuts, (plain, long, ten), strict=True):
            got = np.concatenate([span.windows(cut) for span in spans])
            np.testing.assert_array_equal(got, np.concatenate(list(WindowReader(path, config))))


def test_spans_split_into_row_chunks_keep_their_windows(recordings):
    config = AudioConfig(context_seconds=2.5)
    cut = Cut.of(config)
    spans = list(RowReader(recordings[0], config, [cut]).spans())
    whole = np.concatenate([span.windows(cut) for span in spans])
    assert whole.shape == (5, 10 * 32000)  # 23.3 s: five rows, each heard over 10 s
    first = spans[0]
    assert len(first.rows) >= 2
    halves = [first.sub(range(0, 1)).windows(cut), first.sub(first.rows[1:]).windows(cut)]
    np.testing.assert_array_equal(np.concatenate(halves), first.windows(cut))


@pytest.mark.parametrize("last_window, rows", [("pad_end", 3), ("pad_start", 3), ("drop", 2)])
def test_the_last_partial_window_is_padded_at_either_end_or_dropped(tmp_path, last_window, rows):
    import soundfile as sf

    rate = 32000
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, round(12.5 * rate)).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, rate, subtype="FLOAT")
    config = AudioConfig(last_window=last_window)
    reader = RowReader(tmp_path / "a.wav", config, [Cut.of(config)])
    windows = np.concatenate([span.windows(Cut.of(config)) for span in reader.spans()])
    assert reader.n_windows == len(windows) == rows
    np.testing.assert_array_equal(windows[:2].reshape(-1), audio[: 10 * rate])
    tail = audio[10 * rate :]
    if last_window == "pad_end":
        np.testing.assert_array_equal(windows[2, : tail.size], tail)
        assert not windows[2, tail.size :].any()
    elif last_window == "pad_start":
        np.testing.assert_array_equal(windows[2, -tail.size :], tail)
        assert not windows[2, : -tail.size].any()


def test_peak_normalize_scales_each_window_and_leaves_silence():
    from birdinfer.audio import peak_normalize

    windows = np.array([[0.1, -0.4, 0.2], [0.0, 0.0, 0.0], [2.0, 1.0, -1.0]], np.float32)
    out = peak_normalize(windows)
    np.testing.assert_allclose(out[0], [0.25, -1.0, 0.5])
    assert not out[1].any()
    np.testing.assert_allclose(out[2], [1.0, 0.5, -0.5])
