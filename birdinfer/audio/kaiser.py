"""Band-limited resampling as BirdNET's tools do it: resampy's `kaiser_fast` windowed sinc.

birdnetlib (`birdnetlib/main.py`, `utils.py`) and BirdNET-Analyzer load audio with
`librosa.load(sr=48000, res_type="kaiser_fast")`, which calls resampy. Its filter is a sinc
with 24 zero crossings, rolloff 0.868212 and a Kaiser window (beta 9.90322), tabulated at 512
points per crossing (resampy `filters.py`; the table built here matches its stored
`kaiser_fast.npz` within 6e-9), and each output sample is the sum over the input samples
within 24 crossings, weighted by the table interpolated linearly at their distance
(`interpn.py`); audio outside the signal is zeros. soxr, birdinfer's decode resampler, gives
audibly the same audio but not the same samples, and BirdNET's scores move by up to ~1e-2
with it; this module gives BirdNET's own samples without numba or resampy.

For a rational ratio P/Q (rates divided by their gcd) output t sits at input position
t * Q / P, so its weights depend only on t mod P: one weight vector per phase. A period of P
outputs reads a span of input that starts Q samples after the previous period's, so the
outputs come from one matrix product: a strided view (periods, span) of the input times the
(span, P) weights of a period.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

ZEROS = 24
TABLE = 512  # points per zero crossing
ROLLOFF = 0.8682120388377784
BETA = 9.90322


@lru_cache(maxsize=1)
def half_window() -> np.ndarray:
    """The filter's right wing, ZEROS * TABLE + 1 points (float64)."""
    n = ZEROS * TABLE
    sinc = ROLLOFF * np.sinc(ROLLOFF * np.linspace(0.0, ZEROS, n + 1))
    return sinc * np.kaiser(2 * n + 1, BETA)[n:]


@lru_cache(maxsize=32)
def phase_weights(rate_in: int, rate_out: int) -> tuple[np.ndarray, int, int, int]:
    """(P, left + right) float32 weights, one row per output phase, over the input samples
    n - left + 1 ... n + right around each output's floor position n; and P, Q, left."""
    g = gcd(rate_in, rate_out)
    p, q = rate_out // g, rate_in // g
    scale = min(1.0, p / q)
    win = half_window() * scale if scale < 1 else half_window()
    delta = np.diff(win, append=win[-1])
    step = int(scale * TABLE)
    nwin = len(win)
    left = right = nwin // step + 1
    weights = np.zeros((p, left + right), np.float64)
    for phase in range(p):
        frac = scale * ((phase * q) % p) / p
        for wing, f in enumerate((frac, scale - frac)):
            index = f * TABLE
            offset = int(index)
            eta = index - offset
            taps = np.arange((nwin - offset) // step)
            values = win[offset + taps * step] + eta * delta[offset + taps * step]
            # left wing: sample n - i sits at column left - 1 - i; right: n + k + 1 at left + k
            columns = left - 1 - taps if wing == 0 else left + taps
            weights[phase, columns] = values
    return weights.astype(np.float32), p, q, left


@lru_cache(maxsize=32)
def period_weights(rate_in: int, rate_out: int) -> np.ndarray:
    """(span, P) float32: the weights of one period's P outputs, column by column, over the
    `span` input samples a period's taps cover (each phase's row placed at its floor)."""
    weights, p, q, left = phase_weights(rate_in, rate_out)
    width = weights.shape[1]
    span = ((p - 1) * q) // p + width
    out = np.zeros((span, p), np.float32)
    for phase in range(p):
        at = (phase * q) // p
        out[at : at + width, phase] = weights[phase]
    return out


ROWS = 8192  # periods per matrix product: bounds the strided copy


def resample(
    audio: np.ndarray, rate_in: int, rate_out: int, start: int = 0, count: int | None = None
) -> np.ndarray:
    """`count` samples at `rate_out` of the (..., samples) float32 `audio`, the first at input
    sample `start` (default: every output of the whole signal, int(n * rate_out / rate_in));
    input outside `audio` is zeros."""
    audio = np.asarray(audio, np.float32)
    if rate_in == rate_out:
        stop = audio.shape[-1] if count is None else start + count
        out = np.zeros((*audio.shape[:-1], stop - start), np.float32)
        part = audio[..., max(start, 0) : stop]
        out[..., max(0, -start) : max(0, -start) + part.shape[-1]] = part
        return out
    _, p, q, left = phase_weights(rate_in, rate_out)
    weights = period_weights(rate_in, rate_out)
    if count is None:
        count = int(audio.shape[-1] * rate_out / rate_in)
    periods = -(-count // p)
    span = weights.shape[0]
    # Zeros around the audio so that every tap of every output reads inside the padded array.
    before = max(0, left - 1 - start)
    last = start - (left - 1) + (periods - 1) * q + span
    after = max(0, last - audio.shape[-1])
    padded = np.zeros((*audio.shape[:-1], before + audio.shape[-1] + after), np.float32)
    padded[..., before : before + audio.shape[-1]] = audio
    flat = padded.reshape(-1, padded.shape[-1])
    out = np.empty((flat.shape[0], periods, p), np.float32)
    item = flat.strides[1]
    # Period m's outputs m * P + phase read input start + m * Q - (left - 1) + j, j < span.
    first = start - (left - 1) + before
    for row in range(flat.shape[0]):
        for m in range(0, periods, ROWS):
            rows = min(ROWS, periods - m)
            view = np.lib.stride_tricks.as_strided(
                flat[row, first + m * q :], shape=(rows, span), strides=(q * item, item)
            )
            out[row, m : m + rows] = view @ weights
    return out.reshape(flat.shape[0], -1)[:, :count].reshape(*audio.shape[:-1], count)


class KaiserStream:
    """`resample` over a stream of blocks (the decode's `resample_chunk(block, last)`, as
    soxr's ResampleStream): the same samples as resampling the whole signal at once, the last
    call giving int(n * rate_out / rate_in) in all, as resampy does."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in, self.rate_out = rate_in, rate_out
        _, self.p, self.q, self.left = phase_weights(rate_in, rate_out)
        self.buffer = np.zeros(0, np.float32)
        self.origin = 0  # input sample number of buffer[0]
        self.received = 0
        self.produced = 0  # outputs given so far (a multiple of P until the last call)

    def resample_chunk(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        self.buffer = np.concatenate([self.buffer, np.asarray(block, np.float32)])
        self.received += len(block)
        if last:
            stop = int(self.received * self.rate_out / self.rate_in)
        else:  # outputs whose every tap is received, in whole periods of P
            ready = (self.received - self.left - 1) * self.p // self.q
            stop = max(self.produced, ready // self.p * self.p)
        count = stop - self.produced
        if count <= 0:
            return np.zeros(0, np.float32)
        start = self.produced // self.p * self.q - self.origin  # produced is a multiple of P
        out = resample(self.buffer, self.rate_in, self.rate_out, start, count)
        self.produced = stop
        keep = max(0, stop // self.p * self.q - self.left - self.origin)
        self.buffer, self.origin = self.buffer[keep:], self.origin + keep
        return out
