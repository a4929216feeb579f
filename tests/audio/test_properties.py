"""Properties of windowing, row ids and resampled lengths; a bounded fuzz of the decode path.

(issue 6, point 5.) The properties use small sample rates and 1 s windows so each example costs a
few milliseconds; hypothesis is bounded by `max_examples` and `deadline`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from birdinfer.audio import WindowReader, count_windows, row_ids
from birdinfer.config import AudioConfig

BOUNDED = settings(
    max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
WINDOW_SECONDS = st.sampled_from([1.0, 2.0, 2.5, 3.0, 5.0, 10.0])
RATES = st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000])


@BOUNDED
@given(frames=st.integers(0, 10**8), rate=RATES, window=WINDOW_SECONDS)
def test_window_count_covers_the_audio_exactly(frames, rate, window):
    n = count_windows(frames, rate, window)
    per_window = Fraction(rate) * Fraction(window)
    if frames == 0:
        assert n == 0
    else:  # every frame falls in a window, and the last window holds at least one frame
        assert (n - 1) * per_window < frames <= n * per_window
        assert n == math.ceil(Fraction(frames) / per_window)


@BOUNDED
@given(stem=st.text(min_size=1, max_size=20), n=st.integers(0, 2000), window=WINDOW_SECONDS)
def test_row_ids_are_unique_ordered_and_end_at_window_multiples(stem, n, window):
    ids = row_ids(stem, n, window)
    assert len(ids) == n == len(set(ids))
    for i, row in enumerate(ids):
        head, _, label = row.rpartition("_")
        end = (i + 1) * window  # ordered, multiples of the window
        assert head == stem
        # the end second as written: "5" and "10" (never "5.0"), "2.5" and "7.5" for 2.5 s windows
        assert label == (str(int(end)) if end.is_integer() else repr(end))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@BOUNDED
@given(
    frames=st.integers(1, 5000),
    block=st.sampled_from([1.0, 1.5, 2.0, 3.7, 300.0]),
    context=st.sampled_from([0.0, 0.25]),
    shifts=st.sampled_from([(0.0,), (-0.5, 0.0, 0.5)]),
)
def test_window_reader_length_for_any_length_and_block_size(
    scratch, frames, block, context, shifts
):
    config = AudioConfig(
        sample_rate=1000,
        window_seconds=1.0,
        block_seconds=block,
        context_seconds=context,
        tta_shifts=shifts,
    )
    signal = np.random.default_rng(frames).uniform(-1, 1, frames).astype(np.float32)
    path = scratch / "length.wav"
    sf.write(str(path), signal, 1000, subtype="FLOAT")
    reader = WindowReader(path, config)
    inputs = np.concatenate(list(reader))
    n = count_windows(frames, 1000, 1.0)
    assert reader.n_windows == n
    assert inputs.shape == (n * config.views, config.input_samples)
    if config.views == 1 and context == 0:  # plain windows: the samples, zero-padded
        flat = inputs.reshape(-1)
        np.testing.assert_array_equal(flat[:frames], signal)
        assert not flat[frames:].any()


@BOUNDED
@given(
    rate=st.sampled_from([1000, 7999, 8000, 11025, 16000, 22050, 44100, 48000, 96000]),
    windows=st.integers(1, 3),
    delta=st.integers(-3, 3),
    block=st.sampled_from([1.0, 1.3, 300.0]),
)
def test_resampled_window_count_follows_the_source(scratch, rate, windows, delta, block):
    """Right at window boundaries the resampler's rounding must not add or drop a row."""
    frames = max(1, windows * rate + delta)  # 1 s windows: `windows` of them, +/- a few samples
    config = AudioConfig(sample_rate=8000, window_seconds=1.0, block_seconds=block)
    path = scratch / "resampled.wav"
    sf.write(str(path), np.full(frames, 0.1, np.float32), rate, subtype="FLOAT")
    reader = WindowReader(path, config)
    inputs = np.concatenate(list(reader))
    assert inputs.shape == (count_windows(frames, rate, 1.0), 8000)
    assert reader.n_windows == inputs.shape[0]


# --- fuzz -----------------------------------------------------------------------------------

FUZZ_CASES = 320  # ~10 ms each; one child process so a crash or hang fails the test
FUZZ = r"""
import io, json, signal, sys, traceback
from pathlib import Path
import numpy as np
import soundfile as sf
from birdinfer.audio import WindowReader
from birdinfer.errors import AudioError
from birdinfer.config import AudioConfig

folder, cases = Path(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(20260)
t = np.arange(2 * 16000) / 16000
tone = (0.3 * np.sin(2 * np.pi * 900 * t) + 0.02 * rng.standard_normal(t.size)).astype("float32")
valid = {}
for ext, major, subtype in [("ogg", "OGG", "VORBIS"), ("flac", "FLAC", "PCM_16"),
                            ("wav", "WAV", "PCM_16"), ("mp3", "MP3", "MPEG_LAYER_III")]:
    buffer = io.BytesIO()
    sf.write(buffer, tone, 16000, format=major, subtype=subtype)
    valid[ext] = buffer.getvalue()
config = AudioConfig(sample_rate=32000, block_seconds=5.0)

def mutate(data):
    data = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:  # overwrite a few bytes anywhere
        for i in rng.integers(0, len(data), rng.integers(1, 20)):
            data[i] = rng.integers(0, 256)
    elif kind == 1:  # overwrite bytes in the header
        for i in rng.integers(0, min(64, len(data)), rng.integers(1, 8)):
            data[i] = rng.integers(0, 256)
    elif kind == 2:  # truncate
        data = data[: rng.integers(0, len(data))]
    else:  # insert random bytes
        at = rng.integers(0, len(data))
        data[at:at] = rng.bytes(int(rng.integers(1, 200)))
    return bytes(data)

def alarm(_signum, _frame):
    raise TimeoutError
signal.signal(signal.SIGALRM, alarm)
outcomes = {"scored": 0, "AudioError": 0}
for case in range(cases):
    ext = ["ogg", "flac", "wav", "mp3"][case % 4]
    if case % 5 == 0:
        data = rng.bytes(int(rng.integers(0, 4000)))
    else:
        data = mutate(valid[ext])
    path = folder / f"case {case}.{ext}"
    path.write_bytes(data)
    signal.alarm(10)
    try:
        reader = WindowReader(path, config)
        inputs = np.concatenate(list(reader))
        assert inputs.shape == (reader.n_windows, 160000) and np.isfinite(inputs).all()
        outcomes["scored"] += 1
    except AudioError as exc:
        assert str(path) in str(exc) and exc.reason, exc
        outcomes["AudioError"] += 1
    except BaseException:
        signal.alarm(0)
        print(f"case {case} ({ext}, {len(data)} bytes): " + traceback.format_exc(), file=sys.stderr)
        path.rename(folder / f"failing.{ext}")
        sys.exit(1)
    signal.alarm(0)
    path.unlink()
print(json.dumps(outcomes))
"""


def test_fuzzed_bytes_give_audio_errors_only(tmp_path):
    """Random and mutated OGG/FLAC/WAV/MP3 bytes: decoded, or an AudioError naming the file;
    no other exception, no hang (10 s per case), no segfault (a child process)."""
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FUZZ), str(tmp_path), str(FUZZ_CASES)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-3000:]}"
    outcomes = json.loads(child.stdout.strip().splitlines()[-1])
    assert sum(outcomes.values()) == FUZZ_CASES
    assert outcomes["scored"] > 0 and outcomes["AudioError"] > 0  # both paths were exercised
