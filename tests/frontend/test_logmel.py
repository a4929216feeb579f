import numpy as np
import pytest
import soundfile as sf

from birdinfer.config import MelConfig
from birdinfer.demo import make_soundscape
from birdinfer.frontend import LogMel, mel_filterbank
from birdinfer.frontend.logmel import normalize, power_to_db

librosa = pytest.importorskip("librosa")

PRESETS = [
    MelConfig(normalization="none"),  # 2048 / 512 / 128, fmin 20, fmax 16000
    MelConfig(n_fft=1024, hop_length=320, n_mels=64, fmin=40, fmax=15000, normalization="none"),
    MelConfig(n_fft=2048, hop_length=717, n_mels=224, fmin=20, fmax=16000, normalization="none"),
]


def librosa_db(window: np.ndarray, cfg: MelConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=window,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        power=cfg.power,
        center=cfg.center,
    )
    return librosa.power_to_db(mel, ref=np.max if cfg.ref == "max" else cfg.ref, top_db=cfg.top_db)


@pytest.mark.parametrize("cfg", PRESETS, ids=["2048-512-128", "1024-320-64", "2048-717-224"])
def test_filterbank_matches_librosa(cfg):
    ours = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    theirs = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-7)


def _assert_db_parity(windows: np.ndarray, cfg: MelConfig) -> None:
    ours = LogMel(cfg)(windows)
    assert ours.shape == (len(windows), 1, cfg.n_mels, cfg.frames_for(windows.shape[1]))
    for i, window in enumerate(windows):
        diff = np.abs(ours[i, 0] - librosa_db(window, cfg)).max()
        assert diff < 1e-3, f"window {i}: {diff} dB from librosa"


@pytest.mark.parametrize("cfg", PRESETS, ids=["2048-512-128", "1024-320-64", "2048-717-224"])
def test_log_mel_within_1e3_db_of_librosa_on_real_audio(shared_audio, cfg):
    audio, rate = sf.read(str(shared_audio / "1min.wav"), dtype="float32")
    assert rate == 32000
    _assert_db_parity(audio[: 4 * 160000].reshape(4, 160000), cfg)


def test_log_mel_within_1e3_db_of_librosa_on_synthetic_audio():
    audio = make_soundscape(seed=3, seconds=20.0).audio
    _assert_db_parity(audio.reshape(4, 160000), PRESETS[0])


def test_reference_one_and_no_top_db_match_librosa():
    cfg = MelConfig(ref=1.0, top_db=None, normalization="none")
    audio = make_soundscape(seed=4, seconds=5.0).audio[None]
    ours = LogMel(cfg)(audio)[0, 0]
    # Without a top_db floor, the quietest bins are at float32 noise: compare what is audible.
    theirs = librosa_db(audio[0], cfg)
    audible = theirs > theirs.max() - 100
    assert np.abs(ours - theirs)[audible].max() < 1e-3


def test_magnitude_power_matches_librosa_amplitude_to_db():
    cfg = MelConfig(power=1.0, normalization="none")
    audio = make_soundscape(seed=5, seconds=5.0).audio
    mel = librosa.feature.melspectrogram(
        y=audio, sr=32000, n_fft=2048, hop_length=512, n_mels=128, fmin=20, fmax=16000, power=1.0
    )
    theirs = librosa.amplitude_to_db(mel, ref=np.max, top_db=80)
    assert np.abs(LogMel(cfg)(audio[None])[0, 0] - theirs).max() < 1e-3


def test_batch_size_does_not_change_features():
    audio = make_soundscape(seed=6, seconds=30.0).audio.reshape(6, 160000)
    frontend = LogMel(MelConfig())
    together = frontend(audio)
    one_by_one = np.concatenate([frontend(audio[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_power_to_db_is_per_window():
    mel = np.stack([np.full((2, 3), 1.0), np.full((2, 3), 100.0)]).astype(np.float32)
    mel[1, 0, 0] = 1e-12  # 140 dB below its window's max: clipped to max - top_db
    db = power_to_db(mel, MelConfig(normalization="none"))
    np.testing.assert_allclose(db[0], 0.0)
    assert db[1, 0, 0] == pytest.approx(-80.0)
    assert db[1, 1, 1] == pytest.approx(0.0)


def test_normalizations_on_a_hand_computed_example():
    db = np.array([[[-80.0, -40.0], [0.0, -20.0]]], np.float32)
    np.testing.assert_allclose(normalize(db, "scale80"), [[[0.0, 0.5], [1.0, 0.75]]])
    np.testing.assert_allclose(normalize(db, "minmax"), [[[0.0, 0.5], [1.0, 0.75]]], atol=1e-6)
    standard = normalize(db, "standardize")
    assert standard.mean() == pytest.approx(0.0, abs=1e-6)
    assert standard.std() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(normalize(db, "none"), db)


def test_silence_gives_finite_features():
    out = LogMel(MelConfig())(np.zeros((2, 160000), np.float32))
    assert np.isfinite(out).all()


@pytest.mark.parametrize("n_fft, n_mels", [(2048, 128), (512, 256), (256, 128)])
def test_sparse_filterbank_equals_the_dense_product(n_fft, n_mels):
    from birdinfer.frontend.logmel import SparseFilterbank

    with pytest.warns(UserWarning) if n_fft <= 512 else _no_warning():
        fb = librosa.filters.mel(sr=32000, n_fft=n_fft, n_mels=n_mels, fmin=0, fmax=16000)
    spectrum = np.random.default_rng(0).random((3, 7, fb.shape[1])).astype(np.float32)
    sparse = SparseFilterbank(fb)
    if n_fft <= 512:
        assert not sparse.dense  # some filters fall between bins: they must come out as 0
    np.testing.assert_allclose(sparse(spectrum), spectrum @ fb.T, rtol=1e-5, atol=1e-7)


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_default_front_end_does_little_interpreter_work_per_window():
    """The GIL is held only between numpy/BLAS/FFT calls: bound the interpreter-level calls
    (Python functions and builtins) per window, so the heavy work stays in GIL-free C. The
    per-filter design made ~84 per window; blocks of filters and the direct FFT binding ~51."""
    import sys

    logmel = LogMel(MelConfig())
    windows = np.random.default_rng(0).standard_normal((16, 160000)).astype(np.float32)
    logmel(windows)  # buffers made once per thread
    events = []
    sys.setprofile(lambda frame, event, arg: events.append(event))
    try:
        logmel(windows)
    finally:
        sys.setprofile(None)
    calls = sum(event in ("call", "c_call") for event in events) / len(windows)
    assert calls <= 64, f"{calls:.1f} interpreter-level calls per window"


def _quiet_chirp() -> np.ndarray:
    """A log chirp at -60 dBFS over noise at -120 dBFS: bands within 80 dB of the window's
    loudest yet far below their frame's power, where a float32 FFT's rounding shows in the dB."""
    from scipy.signal import chirp

    t = np.arange(160000) / 32000
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (1e-3 * chirp(t, 16, 5.0, 8000, method="logarithmic") + 1e-6 * noise)[None].astype(
        np.float32
    )


def test_frames_far_below_their_power_are_computed_in_float64_as_librosa_does(monkeypatch):
    import birdinfer.frontend.logmel as logmel

    librosa = pytest.importorskip("librosa")
    window = _quiet_chirp()
    cfg = MelConfig()
    theirs = librosa.power_to_db(
        librosa.feature.melspectrogram(y=window[0], sr=32000, n_fft=2048, hop_length=512,
                                       n_mels=128, fmin=20, fmax=16000, pad_mode="constant"),
        ref=np.max, top_db=80,
    )  # fmt: skip
    exact = np.abs(LogMel(cfg).scaled(window)[0] - theirs).max()
    monkeypatch.setattr(logmel, "QUIET", 0.0)  # the float32 FFT alone
    float32_only = np.abs(LogMel(cfg).scaled(window)[0] - theirs).max()
    assert exact <= 3e-4 < 5e-4 < float32_only
