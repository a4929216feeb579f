"""The kaiser_fast resampler: BirdNET's own samples (resampy's filter), a window resampled with
its margin equal to the same span of the whole signal, and resampy itself where installed."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.audio import kaiser


def noise(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(round(rate * seconds))).astype(np.float32)


@pytest.mark.parametrize("rates", [(32000, 48000), (44100, 48000), (48000, 32000)])
def test_a_window_with_its_margin_equals_that_span_of_the_whole_signal(rates):
    rate_in, rate_out = rates
    audio = noise(rate_in, 2.0)
    whole = kaiser.resample(audio, rate_in, rate_out)
    g = np.gcd(rate_in, rate_out)
    step = rate_in // g  # input samples between outputs that fall on an input sample
    start = 200 * step
    first = start * rate_out // rate_in
    margin = kaiser.phase_weights(rate_in, rate_out)[3]
    window = audio[start - margin : start + rate_in // 2 + margin]
    part = kaiser.resample(window, rate_in, rate_out, start=margin, count=rate_out // 4)
    np.testing.assert_allclose(part, whole[first : first + rate_out // 4], atol=1e-6)


def test_a_band_limited_tone_keeps_its_samples_when_upsampled():
    t_in = np.arange(32000) / 32000
    tone = np.sin(2 * np.pi * 1000 * t_in).astype(np.float32)
    out = kaiser.resample(tone, 32000, 48000)
    t_out = np.arange(len(out)) / 48000
    middle = slice(1000, len(out) - 1000)  # away from the zeros beyond the signal's ends
    np.testing.assert_allclose(out[middle], np.sin(2 * np.pi * 1000 * t_out)[middle], atol=2e-3)
    assert len(out) == 48000


def test_a_tone_above_the_new_nyquist_is_removed_when_downsampling():
    t_in = np.arange(48000) / 48000
    tone = np.sin(2 * np.pi * 20000 * t_in).astype(np.float32)  # above 16 kHz
    out = kaiser.resample(tone, 48000, 32000)
    assert np.abs(out[1000:-1000]).max() < 1e-3


def test_batches_resample_row_by_row():
    batch = np.stack([noise(32000, 0.5, seed) for seed in range(3)])
    together = kaiser.resample(batch, 32000, 48000)
    for row, audio in zip(together, batch, strict=True):
        np.testing.assert_array_equal(row, kaiser.resample(audio, 32000, 48000))


def test_matches_resampy_kaiser_fast():
    resampy = pytest.importorskip("resampy")
    audio = noise(44100, 1.3)
    for rate_out in (48000, 32000):
        x = kaiser.resample(audio, 44100, rate_out)
        ref = resampy.resample(audio, 44100, rate_out, filter="kaiser_fast")
        assert x.shape == ref.shape
        np.testing.assert_allclose(x, ref, atol=2e-6)


@pytest.mark.parametrize("block", [1000, 44100])
def test_a_stream_of_blocks_gives_the_whole_signals_samples(block):
    audio = noise(44100, 2.3)
    whole = kaiser.resample(audio, 44100, 48000)
    stream = kaiser.KaiserStream(44100, 48000)
    parts = [
        stream.resample_chunk(audio[i : i + block], last=i + block >= len(audio))
        for i in range(0, len(audio), block)
    ]
    streamed = np.concatenate(parts)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=2e-6)


def test_the_decode_resamples_with_kaiser_fast_when_asked(tmp_path):
    import soundfile as sf

    from birdinfer.audio import decode_windows
    from birdinfer.config import AudioConfig

    audio = noise(44100, 6.0)
    path = tmp_path / "clip.wav"
    sf.write(path, audio, 44100, subtype="FLOAT")
    config = AudioConfig(sample_rate=48000, resampler="kaiser_fast")
    decoded = np.concatenate(list(decode_windows(path, config)))
    expected = kaiser.resample(audio, 44100, 48000)
    np.testing.assert_allclose(decoded[: len(expected)], expected, atol=2e-6)
    soxr_decoded = np.concatenate(list(decode_windows(path, AudioConfig(sample_rate=48000))))
    assert np.abs(soxr_decoded[: len(expected)] - expected).max() > 1e-3
