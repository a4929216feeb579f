"""Seeded synthetic soundscapes with known labels, for the demo model, tests and benchmarks.

A soundscape is a noisy background (pink/brown noise, gusty wind, rain clicks) with bird-, frog-
and insect-like calls placed at known times. Each species has its own call family (sweep, trill,
harmonic stack, pulse train, low hoot, buzz) in its own frequency band, with random per-call
variation in pitch, duration, rate and level, so a model has to generalise while the task stays
learnable from a 128-band log-mel spectrogram.

Everything is drawn from `numpy.random.Generator`s seeded from the soundscape's seed, so the same
seed gives bit-identical audio and events (for a given numpy version). Only numpy is needed to
generate; `soundfile` is imported lazily to write files.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from birdinfer.atomic import write_atomic

logger = logging.getLogger(__name__)

SAMPLE_RATE = 32000
WINDOW_SECONDS = 5.0
KINDS = ("sweep", "trill", "harmonic", "pulse", "hoot", "buzz")

PITCH_JITTER = 0.08  # each call's frequencies are scaled by a factor in [1 - j, 1 + j]
RATE_JITTER = 0.10  # note, pulse and hoot rates vary by this fraction
SNR_DB_RANGE = (-3.0, 20.0)  # call power over background power in the call's own band
BACKGROUND_DBFS_RANGE = (-42.0, -28.0)  # RMS level of the background
ACTIVE_SPECIES_PROB = 0.6  # share of species that call at all in one soundscape
PEAK_LIMIT = 0.98  # headroom so lossy encoders do not clip on decode
WRITE_BLOCK_FRAMES = SAMPLE_RATE * 10  # libsndfile crashes on one large OGG Vorbis write
SUBTYPES = MappingProxyType(
    {"ogg": ("OGG", "VORBIS"), "wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16")}
)


@dataclass(frozen=True)
class Species:
    """A synthetic species: its submission column, call family and call parameters.

    `f_low`..`f_high` is the band (Hz) that holds the call's energy before pitch jitter; the
    call's SNR is measured against the background in that band. `rate` is notes (trill), pulses
    (pulse), hoots (hoot) or amplitude-modulation cycles (buzz) per second.
    """

    code: str
    name: str
    kind: str
    f_low: float
    f_high: float
    min_seconds: float
    max_seconds: float
    rate: float = 0.0
    rising: bool = True  # sweep direction

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"species {self.code!r}: kind {self.kind!r} is not one of {KINDS}")
        if not 0 < self.f_low < self.f_high:
            raise ValueError(f"species {self.code!r}: need 0 < f_low < f_high (Hz)")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"species {self.code!r}: need 0 < min_seconds <= max_seconds")
        if self.kind in ("trill", "pulse", "hoot", "buzz") and self.rate <= 0:
            raise ValueError(f"species {self.code!r}: kind {self.kind!r} needs rate > 0")


# Bands are disjoint except for the broadband pulse train (told apart by its click rhythm) and
# the harmonic stack's upper partials (told apart by their parallel, steady lines).
DEMO_SPECIES: tuple[Species, ...] = (
    Species("hooowl", "hoot owl (synthetic)", "hoot", 300.0, 480.0, 0.9, 2.0, rate=2.2),
    Species("harthr", "harmonic thrush (synthetic)", "harmonic", 800.0, 5000.0, 0.5, 1.3),
    Species("swepip", "sweep pipit (synthetic)", "sweep", 1800.0, 4000.0, 0.5, 1.2),
    # An iNat-style numeric code, as BirdCLEF 2025 used for insects and frogs: it must stay a str.
    Species("41663", "click frog (synthetic)", "pulse", 1500.0, 12000.0, 1.0, 3.0, rate=14.0),
    Species("buzwre", "buzzy wren (synthetic)", "buzz", 4000.0, 5200.0, 0.6, 1.6, rate=90.0),
    Species("trlwar", "trilling warbler (synthetic)", "trill", 5800.0, 7200.0, 0.8, 2.0, rate=20.0),
    Species(
        "whikit", "whistling kite (synthetic)", "sweep", 8000.0, 10500.0, 0.5, 1.1, rising=False
    ),
)


@dataclass(frozen=True)
class CallEvent:
    species: str  # Species.code
    start: float  # seconds
    end: float  # seconds


@dataclass(frozen=True)
class Soundscape:
    audio: np.ndarray  # float32, mono, peak <= 1.0
    sample_rate: int
    events: tuple[CallEvent, ...]


@dataclass(frozen=True)
class _PlannedCall:
    species: Species
    start: int  # sample
    length: int  # samples
    pitch: float  # frequency factor
    snr_db: float


# ---------------------------------------------------------------------------------------------
# Call rendering: each renderer returns a float64 call of n samples, arbitrary scale.


def _tone(freq_hz: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sinusoid following an instantaneous-frequency track (phase = integral of frequency)."""
    return np.sin(2 * np.pi * np.cumsum(freq_hz) / sr + rng.uniform(0, 2 * np.pi))


def _ramps(n: int, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine onset and offset, so calls do not click at their edges."""
    env = np.ones(n)
    a, r = min(int(attack_s * sr), n // 2), min(int(release_s * sr), n // 2)
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / max(a, 1))
    if r > 0:
        env[-r:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, r + 1) / r)
    return env


def _bandlimit(x: np.ndarray, sr: int, f_lo: float, f_hi: float) -> np.ndarray:
    """Zero everything outside [f_lo, f_hi] Hz (FFT mask over a fast, zero-padded length)."""
    m = _fft_length(len(x))
    spec = np.fft.rfft(x, m)
    freqs = np.fft.rfftfreq(m, 1 / sr)
    spec[(freqs < f_lo) | (freqs > f_hi)] = 0
    return np.fft.irfft(spec, m)[: len(x)]


def _note_phase(n: int, sr: int, rate: float, duty: float) -> tuple[np.ndarray, np.ndarray]:
    """Position inside the current note (0..1 while sounding) and the on/off gate."""
    cycle = (np.arange(n) / sr * rate) % 1.0
    gate = cycle < duty
    return np.where(gate, cycle / duty, 0.0), gate


def _render_sweep(sp: Species, n: int, sr: int, k: float, rng: np.random.Generator) -> np.ndarray:
    lo, hi = sp.f_low * k, sp.f_high * k
    u = np.arange(n) / max(n - 1, 1)
    if not sp.rising:
        u = 1.0 - u
    freq = lo * (hi / lo) ** u  # exponential sweep: a straight line on the mel scale above 1 kHz
    return _tone(freq, sr, rng) * _ramps(n, sr, 0.02, 0.04)


def _render_trill(sp: Species, n: int, sr: int, k: float, rng: np.random.Generator) -> np.ndarray:
    rate = sp.rate * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)
    pos, gate = _note_phase(n, sr, rate, duty=0.6)
    freq = (sp.f_high - (sp.f_high - sp.f_low) * pos) * k  # each note a short down-chirp
    env = np.where(gate, np.sin(np.pi * pos) ** 2, 0.0)
    return _tone(freq, sr, rng) * env * _ramps(n, sr, 0.05, 0.05)


def _render_harmonic(
    sp: Species, n: int, sr: int, k: float, rng: np.random.Generator
) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = sp.f_low * 1.1 * k * (1 + 0.015 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
    out = np.zeros(n)
    n_partials = max(int(sp.f_high * k / f0.max()), 1)  # partials that stay inside the band
    for h in range(1, n_partials + 1):
        out += 0.6 ** (h - 1) * rng.uniform(0.7, 1.3) * _tone(h * f0, sr, rng)
    return out * _ramps(n, sr, 0.03, 0.08)


def _render_pulse(sp: Species, n: int, sr: int, k: float, rng: np.random.Generator) -> np.ndarray:
    rate = sp.rate * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)
    click_len = int(0.003 * sr)
    starts = (np.arange(0, n / sr, 1 / rate) * sr).astype(int)
    starts = np.clip(starts + rng.integers(-sr // 500, sr // 500 + 1, len(starts)), 0, None)
    starts = starts[starts + click_len <= n]
    decay = np.exp(-np.arange(click_len) / (0.0006 * sr))
    gains = rng.uniform(0.6, 1.0, (len(starts), 1))
    clicks = rng.standard_normal((len(starts), click_len)) * decay * gains
    out = np.zeros(n)
    np.add.at(out, starts[:, None] + np.arange(click_len), clicks)
    return _bandlimit(out, sr, sp.f_low * k, sp.f_high * k)


def _render_hoot(sp: Species, n: int, sr: int, k: float, rng: np.random.Generator) -> np.ndarray:
    rate = sp.rate * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)
    pos, gate = _note_phase(n, sr, rate, duty=0.55)
    centre = math.sqrt(sp.f_low * sp.f_high) * k
    freq = centre * (1.05 - 0.1 * pos)  # each hoot glides down by ~10%
    env = np.where(gate, np.sin(np.pi * pos) ** 1.5, 0.0)
    return _tone(freq, sr, rng) * env


def _render_buzz(sp: Species, n: int, sr: int, k: float, rng: np.random.Generator) -> np.ndarray:
    rate = sp.rate * rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)
    noise = _bandlimit(rng.standard_normal(n), sr, sp.f_low * k, sp.f_high * k)
    am = (0.55 + 0.45 * np.sin(2 * np.pi * rate * np.arange(n) / sr)) ** 2
    return noise * am * _ramps(n, sr, 0.04, 0.06)


_Renderer = Callable[[Species, int, int, float, np.random.Generator], np.ndarray]
_RENDERERS: MappingProxyType[str, _Renderer] = MappingProxyType(
    {
        "sweep": _render_sweep,
        "trill": _render_trill,
        "harmonic": _render_harmonic,
        "pulse": _render_pulse,
        "hoot": _render_hoot,
        "buzz": _render_buzz,
    }
)


def render_call(
    species: Species,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
    seconds: float | None = None,
    pitch: float | None = None,
) -> np.ndarray:
    """One isolated call, float32 with peak 1.0; duration and pitch factor drawn when not given."""
    if seconds is None:
        seconds = rng.uniform(species.min_seconds, species.max_seconds)
    if pitch is None:
        pitch = rng.uniform(1 - PITCH_JITTER, 1 + PITCH_JITTER)
    _check_nyquist([species], sample_rate)
    n = max(int(round(seconds * sample_rate)), 1)
    call = _RENDERERS[species.kind](species, n, sample_rate, pitch, rng)
    peak = np.max(np.abs(call))
    return (call / peak if peak > 0 else call).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Background


def _fft_length(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: FFTs of lengths with large prime factors are very slow."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _random_spectrum(rng: np.random.Generator, n_bins: int) -> np.ndarray:
    """The rfft of white Gaussian noise is complex Gaussian per bin: draw it directly."""
    return rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def _coloured_noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A per-soundscape blend of pink (1/f power) and brown (1/f^2 power) noise."""
    m = _fft_length(n)
    freqs = np.maximum(np.fft.rfftfreq(m, 1 / sr), 20.0)
    brown_share = rng.uniform(0.0, 0.7)
    shape = (1 - brown_share) / np.sqrt(freqs) + brown_share * 30.0 / freqs
    return _unit_rms(np.fft.irfft(_random_spectrum(rng, len(freqs)) * shape, m)[:n])


def _wind(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Low-passed noise under a slow gust envelope."""
    m = _fft_length(n)
    freqs = np.fft.rfftfreq(m, 1 / sr)
    cutoff = rng.uniform(120.0, 400.0)
    rumble = np.fft.irfft(_random_spectrum(rng, len(freqs)) / (1 + (freqs / cutoff) ** 4), m)[:n]
    # Gusts: a random walk sampled every ~0.7 s, linearly interpolated, through exp().
    knots = np.cumsum(rng.normal(0, 0.5, int(n / sr / 0.7) + 2))
    gust = np.exp(np.interp(np.arange(n) / sr, np.arange(len(knots)) * 0.7, knots - knots.mean()))
    return _unit_rms(rumble * np.clip(gust, 0.05, 20.0))


def _rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Random short decaying high-passed impulses (drops on leaves)."""
    drop_len = int(0.002 * sr)
    n_drops = rng.poisson(rng.uniform(5, 60) * n / sr)
    out = np.zeros(n)
    if n_drops == 0 or n <= drop_len:
        return out
    starts = rng.integers(0, n - drop_len, n_drops)
    tau = rng.uniform(0.0002, 0.0008, (n_drops, 1)) * sr
    amps = np.exp(rng.normal(0, 0.8, (n_drops, 1)))
    drops = np.diff(rng.standard_normal((n_drops, drop_len + 1)), axis=1)  # diff = high-pass
    np.add.at(
        out,
        starts[:, None] + np.arange(drop_len),
        drops * amps * np.exp(-np.arange(drop_len) / tau),
    )
    return _unit_rms(out)


def _background(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Background with levels drawn per soundscape, scaled to a drawn RMS level (dBFS)."""
    wind_db = rng.uniform(-12.0, 3.0)
    rain_db = rng.uniform(-20.0, -4.0) if rng.random() < 0.5 else None
    mix = _coloured_noise(rng, n, sr) + 10 ** (wind_db / 20) * _wind(rng, n, sr)
    if rain_db is not None:
        mix += 10 ** (rain_db / 20) * _rain(rng, n, sr)
    return _unit_rms(mix) * 10 ** (rng.uniform(*BACKGROUND_DBFS_RANGE) / 20)


class _BandPower:
    """Mean-square power of a signal inside any frequency band, from one FFT (Parseval)."""

    def __init__(self, x: np.ndarray, sr: int) -> None:
        power = np.abs(np.fft.rfft(x)) ** 2 * 2 / len(x) ** 2
        self._cumulative = np.concatenate([[0.0], np.cumsum(power)])
        self._bin_hz = sr / len(x)

    def mean_square(self, f_lo: float, f_hi: float) -> float:
        lo = int(np.ceil(f_lo / self._bin_hz))
        hi = min(int(np.floor(f_hi / self._bin_hz)) + 1, len(self._cumulative) - 1)
        return float(self._cumulative[hi] - self._cumulative[lo]) if hi > lo else 0.0


# ---------------------------------------------------------------------------------------------
# Soundscapes


def _check_nyquist(species: Sequence[Species], sample_rate: int) -> None:
    for sp in species:
        if sp.f_high * (1 + PITCH_JITTER) >= sample_rate / 2:
            raise ValueError(
                f"species {sp.code!r} reaches {sp.f_high * (1 + PITCH_JITTER):.0f} Hz, above the "
                f"Nyquist frequency of {sample_rate} Hz audio; use a higher sample_rate"
            )


def _validate(seconds: float, sample_rate: int, species: Sequence[Species], cpm: float) -> None:
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if cpm < 0:
        raise ValueError(f"calls_per_minute must be >= 0, got {cpm}")
    codes = [sp.code for sp in species]
    if not codes or len(set(codes)) != len(codes):
        raise ValueError(f"species must be non-empty with unique codes, got {codes}")
    _check_nyquist(species, sample_rate)


def _plan_calls(
    rng: np.random.Generator, n: int, sr: int, species: Sequence[Species], cpm: float
) -> list[_PlannedCall]:
    """Which species call, when, how long, at what pitch and SNR."""
    # Only some species call in a given soundscape, at different rates, as in real recordings.
    active = rng.random(len(species)) < ACTIVE_SPECIES_PROB
    active[rng.integers(len(species))] = True
    weights = rng.uniform(0.5, 2.0, len(species)) * active
    n_calls = rng.poisson(cpm * n / sr / 60.0)
    which = rng.choice(len(species), size=n_calls, p=weights / weights.sum())
    u_len, u_start = rng.random(n_calls), rng.random(n_calls)
    pitch = rng.uniform(1 - PITCH_JITTER, 1 + PITCH_JITTER, n_calls)
    snr = rng.uniform(*SNR_DB_RANGE, n_calls)
    calls = []
    for i, idx in enumerate(which):
        sp = species[idx]
        seconds = sp.min_seconds + u_len[i] * (sp.max_seconds - sp.min_seconds)
        length = min(max(int(round(seconds * sr)), 1), n)
        start = int(u_start[i] * (n - length))
        calls.append(_PlannedCall(sp, start, length, float(pitch[i]), float(snr[i])))
    return sorted(calls, key=lambda c: (c.start, c.species.code))


def _mix_calls(
    background: np.ndarray, sr: int, calls: Sequence[_PlannedCall], rng: np.random.Generator
) -> np.ndarray:
    """Add each call scaled to its SNR against the background in the call's own band."""
    band_power = _BandPower(background, sr)
    audio = background.copy()
    for call in calls:
        sp = call.species
        wave = _RENDERERS[sp.kind](sp, call.length, sr, call.pitch, rng)
        call_power = float(np.mean(wave**2))
        noise_power = band_power.mean_square(sp.f_low * call.pitch, sp.f_high * call.pitch)
        if call_power > 0:
            gain = math.sqrt(max(noise_power, 1e-12) * 10 ** (call.snr_db / 10) / call_power)
            audio[call.start : call.start + call.length] += gain * wave
    return audio


def make_soundscape(
    seed: int,
    seconds: float = 60.0,
    sample_rate: int = SAMPLE_RATE,
    species: Sequence[Species] = DEMO_SPECIES,
    calls_per_minute: float = 24.0,
) -> Soundscape:
    """A synthetic soundscape and its call events; the same seed gives bit-identical output."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (numpy's SeedSequence), got {seed}")
    _validate(seconds, sample_rate, species, calls_per_minute)
    n = int(round(seconds * sample_rate))
    # Independent streams, so that e.g. a background change does not move the calls.
    bg_seq, plan_seq, call_seq = np.random.SeedSequence(seed).spawn(3)
    background = _background(np.random.default_rng(bg_seq), n, sample_rate)
    calls = _plan_calls(np.random.default_rng(plan_seq), n, sample_rate, species, calls_per_minute)
    audio = _mix_calls(background, sample_rate, calls, np.random.default_rng(call_seq))
    peak = float(np.max(np.abs(audio)))
    if peak > PEAK_LIMIT:
        audio *= PEAK_LIMIT / peak
    events = tuple(
        CallEvent(c.species.code, c.start / sample_rate, (c.start + c.length) / sample_rate)
        for c in calls
    )
    logger.debug("soundscape seed=%d: %.1f s, %d calls", seed, seconds, len(events))
    return Soundscape(audio.astype(np.float32), sample_rate, events)


def windows_covering(seconds: float, window_seconds: float = WINDOW_SECONDS) -> int:
    """Number of windows covering `seconds`; a partial final window counts; at least 1."""
    if window_seconds <= 0:
        raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
    # The tolerance keeps 60.000000001 s (float noise from sample counts) at 12 windows.
    return max(1, math.ceil(seconds / window_seconds - 1e-6))


def window_labels(
    events: Sequence[CallEvent],
    n_windows: int,
    class_codes: Sequence[str],
    window_seconds: float = WINDOW_SECONDS,
    min_overlap_seconds: float = 0.3,
) -> np.ndarray:
    """0/1 matrix (n_windows, len(class_codes)); window i covers [i*w, (i+1)*w).

    A species is present in a window when one of its calls overlaps it by at least
    min(min_overlap_seconds, call duration / 2), so a short call is labelled in the window that
    holds most of it (both windows when it straddles the boundary exactly). Events of codes not
    in `class_codes` are ignored.
    """
    if n_windows < 0 or window_seconds <= 0:
        raise ValueError("need n_windows >= 0 and window_seconds > 0")
    column = {code: j for j, code in enumerate(class_codes)}
    labels = np.zeros((n_windows, len(class_codes)), dtype=np.float32)
    for ev in events:
        j = column.get(ev.species)
        if j is None or ev.end <= ev.start:
            continue
        need = min(min_overlap_seconds, (ev.end - ev.start) / 2) - 1e-9
        first = max(int(ev.start // window_seconds), 0)
        last = min(int(ev.end // window_seconds), n_windows - 1)
        for i in range(first, last + 1):
            overlap = min(ev.end, (i + 1) * window_seconds) - max(ev.start, i * window_seconds)
            if overlap > 0 and overlap >= need:
                labels[i, j] = 1.0
    return labels


# ---------------------------------------------------------------------------------------------
# Files


def _write_audio(path: Path, audio: np.ndarray, sample_rate: int, fmt: str) -> None:
    """Written atomically (birdinfer.atomic), so readers never see half a file."""
    import soundfile as sf  # lazy: generation needs numpy only

    container, subtype = SUBTYPES[fmt]

    def write(handle) -> None:
        with sf.SoundFile(handle, "w", sample_rate, 1, subtype, format=container) as f:
            for i in range(0, len(audio), WRITE_BLOCK_FRAMES):
                f.write(audio[i : i + WRITE_BLOCK_FRAMES])

    write_atomic(path, write, binary=True, durable=False)


def _write_labels_csv(path: Path, rows: list[list[str]], codes: Sequence[str]) -> None:
    def write(handle) -> None:
        writer = csv.writer(handle)
        writer.writerow(["row_id", *codes])
        writer.writerows(rows)

    write_atomic(path, write, durable=False)


def write_soundscapes(
    folder: Path,
    n_files: int,
    seed: int,
    seconds: float = 60.0,
    fmt: str = "ogg",
    species: Sequence[Species] = DEMO_SPECIES,
    labels_csv: Path | None = None,
) -> list[Path]:
    """Write soundscape_<seed*1000+i>.<fmt> files, each generated with its id as seed.

    With `labels_csv`, also write the labels in the competition's solution format: `row_id`
    (`<stem>_<window end second>`) then one 0/1 column per species code, in `species` order.
    """
    if fmt not in SUBTYPES:
        raise ValueError(f"fmt must be one of {sorted(SUBTYPES)}, got {fmt!r}")
    if n_files < 0:
        raise ValueError(f"n_files must be >= 0, got {n_files}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    codes = [sp.code for sp in species]
    paths: list[Path] = []
    rows: list[list[str]] = []
    for i in range(n_files):
        file_id = seed * 1000 + i
        scape = make_soundscape(file_id, seconds, SAMPLE_RATE, species)
        path = folder / f"soundscape_{file_id}.{fmt}"
        _write_audio(path, scape.audio, scape.sample_rate, fmt)
        paths.append(path)
        n_win = windows_covering(len(scape.audio) / scape.sample_rate)
        labels = window_labels(scape.events, n_win, codes)
        for w in range(n_win):
            end = int(round((w + 1) * WINDOW_SECONDS))
            rows.append([f"{path.stem}_{end}", *(str(int(v)) for v in labels[w])])
    if labels_csv is not None:
        _write_labels_csv(Path(labels_csv), rows, codes)
    logger.info("wrote %d synthetic soundscapes to %s", len(paths), folder)
    return paths
