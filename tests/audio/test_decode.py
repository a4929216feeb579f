"""Decoding: windows of the model's rate, zero-padded, mixed to mono, with context and TTA views."""

import numpy as np
import pytest
import soundfile as sf

from birdinfer.audio import WindowReader, decode_windows, row_ids
from birdinfer.config import AudioConfig
from birdinfer.errors import AudioError
from tests.helpers import write_tone

CFG = AudioConfig()


@pytest.mark.parametrize(
    "seconds, expected_ends",
    [
        (0.1, [5]),  # shorter than a window: one zero-padded window
        (4.99, [5]),
        (5.0, [5]),
        (5.01, [5, 10]),  # a partial final window is kept
        (12.0, [5, 10, 15]),
        (60.0, list(range(5, 65, 5))),
    ],
)
def test_window_count_and_row_ids(tmp_path, seconds, expected_ends):
    path = tmp_path / "soundscape_123.wav"
    write_tone(path, seconds)
    windows = decode_windows(path, CFG)
    assert windows.shape == (len(expected_ends), 160000)
    assert row_ids("soundscape_123", len(windows), 5.0) == [
        f"soundscape_123_{e}" for e in expected_ends
    ]


def test_partial_window_is_zero_padded_and_samples_stay_in_place(tmp_path):
    path = tmp_path / "a.wav"
    mono = write_tone(path, 7.0, subtype="FLOAT")
    windows = decode_windows(path, CFG)
    flat = windows.reshape(-1)
    np.testing.assert_array_equal(flat[: mono.size], mono)
    assert not flat[mono.size :].any()


def test_row_ids_for_fractional_windows():
    assert row_ids("x", 3, 2.5) == ["x_2.5", "x_5", "x_7.5"]


@pytest.mark.parametrize("block_seconds", [5.0, 7.0, 300.0])
def test_block_size_does_not_change_windows(tmp_path, block_seconds):
    path = tmp_path / "a.wav"
    write_tone(path, 23.3, subtype="FLOAT")
    reference = decode_windows(path, AudioConfig(block_seconds=300.0))
    np.testing.assert_array_equal(
        decode_windows(path, AudioConfig(block_seconds=block_seconds)), reference
    )


@pytest.mark.parametrize("source_rate", [22050, 44100, 48000, 16000])
def test_resampling_keeps_length_and_pitch(tmp_path, source_rate):
    path = tmp_path / "tone.wav"
    write_tone(path, 10.0, sample_rate=source_rate, freq=1500.0, subtype="FLOAT")
    windows = decode_windows(path, AudioConfig(block_seconds=5.0))  # streaming across blocks
    assert windows.shape == (2, 160000)
    signal = windows.reshape(-1)[16000:-16000]  # away from the resampler's edges
    spectrum = np.abs(np.fft.rfft(signal))
    peak_hz = np.argmax(spectrum) * 32000 / signal.size
    assert abs(peak_hz - 1500.0) < 2.0
    assert abs(np.sqrt(np.mean(signal**2)) - 0.5 / np.sqrt(2)) < 0.01


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000])
def test_any_sample_rate_decodes_to_model_rate_windows_at_its_pitch(tmp_path, rate):
    path = tmp_path / f"rate_{rate}.flac"
    write_tone(path, 10.3, sample_rate=rate, freq=1500.0)  # 3 windows, the last partial
    windows = decode_windows(path, CFG)
    assert windows.shape == (3, 160000)
    signal_ = windows.reshape(-1)[16000 : round(10.3 * 32000) - 16000]  # away from the edges
    peak_hz = np.argmax(np.abs(np.fft.rfft(signal_))) * 32000 / signal_.size
    assert abs(peak_hz - 1500.0) < 2.0


@pytest.mark.parametrize(
    "ext, subtype, bits",
    [
        ("wav", "PCM_U8", 8),
        ("wav", "PCM_16", 16),
        ("wav", "PCM_24", 24),
        ("wav", "PCM_32", 32),
        ("wav", "FLOAT", None),
        ("wav", "DOUBLE", None),
        ("flac", "PCM_S8", 8),
        ("flac", "PCM_16", 16),
        ("flac", "PCM_24", 24),
    ],
)
def test_integer_and_float_samples_decode_within_one_step(tmp_path, ext, subtype, bits):
    path = tmp_path / f"tone.{ext}"
    written = write_tone(path, 5.5, subtype=subtype)
    step = 2.0 ** (1 - bits) if bits else 1e-7  # float32 samples come back exact
    decoded = decode_windows(path, CFG).reshape(-1)[: written.size]
    assert np.abs(decoded - written).max() <= step


def test_no_resampling_at_the_model_rate(tmp_path):
    path = tmp_path / "tone.wav"
    write_tone(path, 5.0, subtype="FLOAT")
    reader = WindowReader(path, CFG)
    assert not reader.resampled
    list(reader)


def test_stereo_is_mixed_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    left = np.full(32000, 0.5, np.float32)
    right = np.full(32000, -0.1, np.float32)
    sf.write(str(path), np.stack([left, right], axis=1), 32000, subtype="FLOAT")
    windows = decode_windows(path, CFG)
    np.testing.assert_allclose(windows[0, :32000], 0.2, atol=1e-7)


def test_nan_and_inf_samples_are_zeroed_with_a_warning(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.full(32000 * 6, 0.25, np.float32)
    data[100:110] = np.nan
    data[5000] = np.inf
    sf.write(str(path), data, 32000, subtype="FLOAT")
    reader = WindowReader(path, CFG)
    windows = np.concatenate(list(reader))
    assert np.isfinite(windows).all()
    assert windows[0, 100] == 0.0 and windows[0, 99] == 0.25
    assert reader.warnings == ["11 NaN/Inf samples set to zero"]


def test_header_only_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros((0, 2), np.float32), 44100)
    with pytest.raises(AudioError, match="empty.wav.*no audio frames"):
        decode_windows(path, CFG)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10, b"OggS" + bytes(200)])
def test_non_audio_bytes_are_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.ogg"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="bad.ogg"):
        decode_windows(path, CFG)


def test_ogg_and_mp3_decode(tmp_path, shared_audio):
    windows = decode_windows(shared_audio / "silence_10s.mp3", CFG)
    assert windows.shape == (2, 160000)
    path = tmp_path / "a.ogg"
    write_tone(path, 6.0)
    assert decode_windows(path, CFG).shape == (2, 160000)


@pytest.mark.parametrize(
    "name, windows",
    [
        ("1min.wav", 12),
        ("birds_10s.wav", 3),
        ("great_plains_toad.wav", 9),  # 44.1 kHz, resampled
        ("aru_1.wav", 1),
        ("LOCA_2021_09_24_652_3.wav", 1),  # 22.05 kHz, 1 s
        ("veryshort.wav", 1),
        ("metadata.wav", 3),
    ],
)
def test_real_recordings(shared_audio, name, windows):
    result = decode_windows(shared_audio / name, CFG)
    assert result.shape == (windows, 160000)
    assert np.isfinite(result).all() and np.abs(result).max() > 0


# --- context windows and shifted TTA views --------------------------------------------------------


def _ramp(path, seconds, rate=1000):
    data = np.arange(1, round(seconds * rate) + 1, dtype=np.float32) / 10000.0
    sf.write(str(path), data, rate, subtype="FLOAT")
    return data


def test_context_windows_carry_the_neighbours_audio(tmp_path):
    data = _ramp(tmp_path / "r.wav", 2.5)
    config = AudioConfig(
        sample_rate=1000, window_seconds=1.0, context_seconds=0.5, block_seconds=1.0
    )
    inputs = decode_windows(tmp_path / "r.wav", config)
    assert inputs.shape == (3, 2000)  # 3 rows, each 0.5 s + 1 s + 0.5 s
    padded = np.concatenate([np.zeros(500), data, np.zeros(1500)])
    for row in range(3):
        np.testing.assert_array_equal(inputs[row], padded[row * 1000 : row * 1000 + 2000])


@pytest.mark.parametrize("block_seconds", [1.0, 1.3, 100.0])
def test_tta_views_are_shifted_windows(tmp_path, block_seconds):
    data = _ramp(tmp_path / "r.wav", 3.2)
    config = AudioConfig(
        sample_rate=1000,
        window_seconds=1.0,
        tta_shifts=(-0.5, 0.0, 0.5),
        block_seconds=block_seconds,
    )
    inputs = decode_windows(tmp_path / "r.wav", config)
    assert inputs.shape == (4 * 3, 1000)  # 4 rows (3.2 s) x 3 views
    padded = np.concatenate([np.zeros(500), data, np.zeros(2000)])
    for row in range(4):
        for view, shift in enumerate((-500, 0, 500)):
            start = 500 + row * 1000 + shift
            np.testing.assert_array_equal(inputs[row * 3 + view], padded[start : start + 1000])
