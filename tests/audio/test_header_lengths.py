"""A header's length is a claim (issue 12, point 1): what probing and decoding make of one that
lies, and files that are not regular files refused without blocking (point 6)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from birdinfer.audio import WindowReader, decode_windows, probe
from birdinfer.config import AudioConfig
from birdinfer.errors import AudioError
from tests.hostile_helpers import flac_bytes, with_total

RATE = 32000
TWELVE_SECONDS = 12 * RATE
CFG = AudioConfig()


@pytest.fixture(scope="module")
def true_flac() -> bytes:
    return flac_bytes(12.0)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_flac_written_to_a_pipe_has_no_length_until_decoded(tmp_path, true_flac):
    path = write(tmp_path / "piped.flac", with_total(true_flac, 0))
    info = probe(path)
    assert (info.frames, info.length_known, info.seconds) == (0, False, 0.0)
    assert "gives no length" in info.note
    reader = WindowReader(path, CFG)
    assert sum(len(group) for group in reader) == 3
    assert reader.seconds == 12.0
    assert any("rows follow the 12.0 s decoded" in w for w in reader.warnings), reader.warnings


def test_a_length_above_the_cap_is_set_aside(tmp_path, true_flac):
    path = write(tmp_path / "huge.flac", with_total(true_flac, (1 << 36) - 1))  # 2.1 million s
    assert not probe(path).length_known
    assert "more than audio.max_header_hours (24 h)" in probe(path).note
    trusting = probe(path, max_header_seconds=1e12)
    assert trusting.length_known and trusting.seconds > 2e6  # the claim, when the cap allows it
    reader = WindowReader(path, CFG)
    assert sum(len(group) for group in reader) == 3 and reader.seconds == 12.0


def test_the_cap_is_a_setting(tmp_path, true_flac):
    path = write(tmp_path / "twelve.flac", true_flac)
    assert probe(path, AudioConfig(max_header_hours=0.001).max_header_seconds).length_known is False
    assert probe(path, AudioConfig().max_header_seconds).frames == TWELVE_SECONDS


def test_a_header_shorter_than_its_stream_gives_rows_for_the_stream(tmp_path, true_flac):
    short = write(tmp_path / "short.flac", with_total(true_flac, 3 * RATE))
    honest = write(tmp_path / "honest.flac", true_flac)
    assert probe(short).seconds == 3.0  # the claim
    reader = WindowReader(short, CFG)
    windows = np.concatenate(list(reader))
    assert windows.shape == (3, 5 * RATE)
    np.testing.assert_array_equal(windows, decode_windows(honest, CFG))
    assert reader.warnings == [
        "its header declares 3.0 s but the stream holds 12.0 s: rows follow the decoded audio"
    ]


def test_an_honest_flac_decodes_without_warnings(tmp_path, true_flac):
    reader = WindowReader(write(tmp_path / "honest.flac", true_flac), CFG)
    assert sum(len(group) for group in reader) == 3 and reader.warnings == []


def test_the_identity_is_that_of_the_handle_decoded(tmp_path, true_flac):
    path = write(tmp_path / "a.flac", true_flac)
    before = path.stat()
    reader = WindowReader(path, CFG)
    list(reader)
    assert (reader.identity.size, reader.identity.mtime_ns) == (before.st_size, before.st_mtime_ns)


def probe_in_a_thread(path: Path, seconds: float = 10.0):
    """probe(path) in a daemon thread: (finished in time, what it raised or returned)."""
    outcome: list = []

    def target():
        try:
            outcome.append(probe(path))
        except AudioError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), (outcome or [None])[0]


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    try:
        finished, outcome = probe_in_a_thread(fifo)
    finally:  # a reader blocked in open() is released by a writer opening the other end
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert finished, "probe blocked on a FIFO"
    assert isinstance(outcome, AudioError) and outcome.reason == (
        "is a FIFO (named pipe), not an audio file"
    )


def test_a_device_and_a_socket_are_refused(tmp_path):
    device = tmp_path / "zero.wav"
    os.symlink("/dev/zero", device)  # read as audio, it would never end
    finished, outcome = probe_in_a_thread(device)
    assert finished and outcome.reason == "is a character device, not an audio file"
    sock = tmp_path / "sock.wav"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
        with pytest.raises(AudioError, match="cannot be opened|is a socket"):
            probe(sock)
