"""One front end over overlapping windows: frames shared where they line up, the same model input
as computing every window on its own (float32 rounding apart)."""

from __future__ import annotations

import numpy as np
import pytest

from birdinfer.config import ImageConfig, MelConfig, NormStep, PcenConfig
from birdinfer.frontend import LogMel, SharedFrontEnd

RATE = 32000
ROW = 5 * RATE


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    """70 s of seeded noise with a chirp, so that every window's mel differs."""
    rng = np.random.default_rng(7)
    t = np.arange(70 * RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * (800 + 40 * t) * t)
    return (0.05 * rng.standard_normal(t.size) + tone).astype(np.float32)


def sliding_and_rows(n_rows: int = 8) -> list[tuple[np.ndarray, int]]:
    """20 s windows centred on rows 2.. (as a sliding member's) and the rows' own 5 s windows."""
    rows = np.arange(n_rows) + 2
    return [(rows * ROW - 3 * RATE * 5 // 2, 4 * ROW), (rows * ROW, ROW)]


def per_window(logmel: LogMel, samples, cuts):
    view = np.lib.stride_tricks.sliding_window_view
    return [logmel(view(samples, length)[starts]) for starts, length in cuts]


class CountingLogMel(LogMel):
    """Counts the frames whose power it computes."""

    frames = 0

    def power_mel(self, windows, frame_floors=False):
        power = super().power_mel(windows, frame_floors)
        CountingLogMel.frames += power.shape[0] * power.shape[2]
        return power


def counting(mel: MelConfig, image: ImageConfig | None = None) -> SharedFrontEnd:
    """A SharedFrontEnd whose per-window and grid computations are both counted."""
    shared = SharedFrontEnd(CountingLogMel(mel, image))
    shared.grid_logmel = CountingLogMel(shared.grid_logmel.config, image)
    CountingLogMel.frames = 0
    return shared


# Each front end, with the share of the asked-for frames it may compute at most: a third where
# every window lines up (20 s windows stepped 5 s ask for each frame four times, the rows once
# more); with hop 512 rows and 20 s windows fall on four phases, and only every other 20 s
# window lines up with another.
MELS = {
    "hop 320 (rows line up), librosa defaults": (
        MelConfig(n_fft=1024, hop_length=320, n_mels=64),
        0.35,
    ),
    "hop 512 (four phases), torchaudio reflect": (
        MelConfig(mel_scale="htk", norm=None, pad_mode="reflect", ref=1.0, filterbank="torchaudio"),
        0.8,
    ),
    "hop 500, win_length, normalized, minmax": (
        MelConfig(
            n_fft=2048,
            hop_length=500,
            win_length=1600,
            normalized=True,
            normalization=(NormStep("standardize", ddof=1), NormStep("minmax")),
        ),
        0.35,
    ),
    "not centred": (MelConfig(n_fft=1024, hop_length=320, n_mels=64, center=False), 0.35),
    "PCEN (a filter over each window's frames)": (
        MelConfig(
            n_fft=1024,
            hop_length=320,
            n_mels=64,
            amplitude="pcen",
            pcen=PcenConfig(input_scale=2**31),
        ),
        0.35,
    ),
}


@pytest.mark.parametrize("label", list(MELS))
def test_shared_frames_give_each_windows_own_input(samples, label):
    mel, most = MELS[label]
    cuts = sliding_and_rows()
    ours = counting(mel).features(samples, cuts)
    computed = CountingLogMel.frames
    reference = per_window(LogMel(mel), samples, cuts)
    asked = sum(x.shape[0] * x.shape[-1] for x in reference)
    for got, want in zip(ours, reference, strict=True):
        assert got.shape == want.shape
        scale = float(np.abs(want).max())
        diff = float(np.abs(got - want).max())
        print(f"{label}: max abs diff {diff:.2e} of {scale:.1f}; frames {computed}/{asked}")
        assert diff <= 2e-5 * max(scale, 1.0)
    # Overlapping windows share their frames: fewer computed than asked for.
    assert computed <= most * asked


def test_image_steps_run_per_window_after_the_shared_power(samples):
    mel = MelConfig(n_fft=1024, hop_length=320, n_mels=64)
    image = ImageConfig(
        channels=3, channel_mode="delta", size=(48, 96), normalization=("imagenet",)
    )
    cuts = sliding_and_rows(3)
    ours = SharedFrontEnd(LogMel(mel, image)).features(samples, cuts)
    reference = per_window(LogMel(mel, image), samples, cuts)
    for got, want in zip(ours, reference, strict=True):
        assert got.shape == want.shape == (3, 3, 48, 96)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_windows_that_do_not_overlap_are_computed_each_on_its_own(samples):
    """Back-to-back 5 s rows (the default run): nothing to share, the per-window arithmetic
    exactly, so a run without overlapping members writes the same bytes as before."""
    mel = MelConfig()
    cuts = [(np.arange(6) * ROW, ROW)]
    ours = SharedFrontEnd(LogMel(mel)).features(samples, cuts)
    (reference,) = per_window(LogMel(mel), samples, cuts)
    np.testing.assert_array_equal(ours[0], reference)


def test_hop_that_never_lines_up_rows_falls_back_to_per_window(samples):
    """The 2025 1st place's hop of 1252: row starts never share a phase, so each sliding
    window is computed on its own, and exactly."""
    mel = MelConfig(n_fft=4096, hop_length=1252, n_mels=224)
    cuts = sliding_and_rows(3)[:1]
    ours = counting(mel).features(samples, cuts)
    (reference,) = per_window(LogMel(mel), samples, cuts)
    assert CountingLogMel.frames == reference.shape[0] * reference.shape[-1]
    np.testing.assert_array_equal(ours[0], reference)


def test_frames_redone_in_float64_agree_with_each_windows_own():
    """A quiet chirp over faint noise, and a loud tone in half a second: the frames far below
    their power are recomputed in float64 by the shared grid as by each window on its own,
    though a grid piece that reaches the loud second has a higher dB floor than a quiet row."""
    from scipy.signal import chirp

    t = np.arange(40 * RATE) / RATE
    noise = np.random.default_rng(5).standard_normal(t.size)
    samples = 1e-3 * chirp(t, 16, 40.0, 8000, method="logarithmic") + 1e-6 * noise
    samples[int(20.2 * RATE) : int(20.7 * RATE)] += 0.5 * np.sin(2 * np.pi * 3000 * t[: RATE // 2])
    samples = samples.astype(np.float32)
    mel = MelConfig(hop_length=320)
    cuts = [(np.arange(4) * ROW, 4 * ROW), (np.arange(6) * ROW + ROW, ROW)]
    ours = SharedFrontEnd(LogMel(mel)).power(samples, cuts)
    reference = [
        LogMel(mel).power_mel(np.lib.stride_tricks.sliding_window_view(samples, n)[s])
        for s, n in cuts
    ]
    for got, want in zip(ours, reference, strict=True):
        kept = want >= want.max(axis=(1, 2), keepdims=True) * 1e-8
        db_diff = 10 * np.abs(np.log10(got[kept] / want[kept]))
        # A frame only one side redoes moves by float32 rounding within QUIET's bound; a quiet
        # row's frames left in float32 because a loud neighbour set the piece's floor, by more.
        assert db_diff.max() <= 5e-4
