"""A hostile folder through `run()` (issue 12, points 1, 6 and 7): each bad file beside good
ones; the run finishes, the bad file's outcome and reason are checked, and every good row equals
that of a run over the good files alone."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from birdinfer.output import summary
from tests.helpers import DEMO_CODES, write_tone
from tests.hostile_helpers import (
    assert_good_rows_intact,
    copy_good,
    damaged_middle,
    flac_bytes,
    pooled_onnx,
    read_back,
    reported_warnings,
    rows_of,
    run_folder,
    sample_submission,
    with_total,
    write_good,
)

pytestmark = pytest.mark.slow  # the tiny model is exported with torch
PLACEHOLDERS = {"placeholder_rows_for_skipped": True, "skipped_file_seconds": 60}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_good(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def reference(good, tiny_onnx, tmp_path_factory):
    return run_folder(good, tiny_onnx, tmp_path_factory.mktemp("reference"))


@pytest.fixture
def inputs(good, tmp_path) -> Path:
    return copy_good(good, tmp_path / "in")


# --- point 1: header lengths are claims -------------------------------------------------------


def test_a_flac_written_to_a_pipe_is_scored_over_its_stream(inputs, tiny_onnx, tmp_path, reference):
    """STREAMINFO total 0 ("unknown"): libsndfile said 2^63 frames, and placeholder rows for
    it ran out of memory building 5.8e13 row ids."""
    piped = inputs / "piped.flac"
    piped.write_bytes(with_total(flac_bytes(12.0), 0))
    result = run_folder(inputs, tiny_onnx, tmp_path, input=PLACEHOLDERS)
    assert result.failures == []
    assert rows_of(result, "piped") == ["piped_5", "piped_10", "piped_15"]
    assert reported_warnings(result, piped) == [
        "its header gives no length (as a stream written to a pipe): rows follow the 12.0 s decoded"
    ]
    assert_good_rows_intact(result, reference)


def test_an_unreadable_file_with_no_length_gets_bounded_placeholder_rows(
    inputs, tiny_onnx, tmp_path, reference
):
    broken = inputs / "broken.flac"
    broken.write_bytes(damaged_middle(with_total(flac_bytes(12.0), 0)))
    result = run_folder(inputs, tiny_onnx, tmp_path, input=PLACEHOLDERS)
    assert [f.path for f in result.failures] == [str(broken)]
    assert "decoding failed" in result.failures[0].reason
    assert len(rows_of(result, "broken")) == 12  # input.skipped_file_seconds: 60
    assert_good_rows_intact(result, reference)


def test_placeholder_rows_come_from_the_sample_submission(inputs, tiny_onnx, tmp_path, reference):
    broken = inputs / "broken.flac"
    broken.write_bytes(damaged_middle(with_total(flac_bytes(12.0), 0)))
    expected = ["broken_5", "broken_10", "broken_15", "broken_20"]
    sample = sample_submission(tmp_path / "sample.csv", ["good_a_5", *expected], DEMO_CODES)
    result = run_folder(
        inputs, tiny_onnx, tmp_path, input=PLACEHOLDERS, output={"sample_submission": str(sample)}
    )
    assert rows_of(result, "broken") == expected
    frame = result.submission.set_index("row_id")
    assert (frame.loc[expected].to_numpy() == 0.0).all()
    assert_good_rows_intact(result, reference)


@pytest.fixture(scope="module")
def second_member(tmp_path_factory) -> Path:
    return pooled_onnx(tmp_path_factory.mktemp("pooled") / "pooled.onnx", DEMO_CODES)


def test_a_header_claiming_millions_of_seconds_moves_no_decision(
    inputs, tiny_onnx, second_member, tmp_path
):
    """STREAMINFO's largest total (2.1 million s at 32 kHz) made the time guard drop members
    for every good file; now it counts 0 s until decoded, and then its 12 s."""
    for i in range(3):  # calibration: the guard plans after 3 files, before the bad one
        write_tone(inputs / f"good_c{i}.wav", 6.0, freq=1200.0 + 300 * i)
    huge = inputs / "zz_huge.flac"
    huge.write_bytes(with_total(flac_bytes(12.0), (1 << 36) - 1))
    guarded = {"budget": {"enabled": True, "minutes": 90}}
    models = {"models": [str(tiny_onnx), str(second_member)]}
    result = run_folder(inputs, tiny_onnx, tmp_path / "out", **guarded, **models)
    guard = json.loads(result.report_path.read_text())["time_guard"]
    assert [d["action"] for d in guard["decisions"]] == ["plan"], guard["decisions"]
    assert len(guard["members_at_end"]) == 2
    assert result.failures == [] and len(rows_of(result, "zz_huge")) == 3
    assert "more than audio.max_header_hours" in reported_warnings(result, huge)[0]
    huge.unlink()
    alone = run_folder(inputs, tiny_onnx, tmp_path / "alone", **guarded, **models)
    assert_good_rows_intact(result, alone)


def test_a_flac_header_shorter_than_its_stream(inputs, tiny_onnx, tmp_path, reference):
    """A header saying 3 s of a 12 s stream gave 1 row and dropped 9 s without a word."""
    audio = flac_bytes(12.0)
    (inputs / "short.flac").write_bytes(with_total(audio, 3 * 32000))
    (inputs / "honest.flac").write_bytes(audio)
    result = run_folder(inputs, tiny_onnx, tmp_path)
    assert rows_of(result, "short") == ["short_5", "short_10", "short_15"]
    frame = result.submission.set_index("row_id")
    np.testing.assert_array_equal(
        frame.loc[rows_of(result, "short")].to_numpy(),
        frame.loc[rows_of(result, "honest")].to_numpy(),
    )
    assert reported_warnings(result, inputs / "short.flac") == [
        "its header declares 3.0 s but the stream holds 12.0 s: rows follow the decoded audio"
    ]
    assert_good_rows_intact(result, reference)


# --- point 6: files that are not regular files ------------------------------------------------

CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from tests.hostile_helpers import run_folder
from pathlib import Path
result = run_folder(Path({folder!r}), Path({model!r}), Path({out!r}))
print(json.dumps({{"failures": [[f.path, f.reason] for f in result.failures],
                  "rows": list(result.submission["row_id"])}}))
"""


def test_fifos_devices_and_sockets_are_skipped_unopened(inputs, tiny_onnx, tmp_path, reference):
    """A FIFO named pipe.wav hung the run for ever. The run happens in a child process, so that
    a regression fails this test after its timeout instead of hanging the suite."""
    fifo, device, sock = inputs / "pipe.wav", inputs / "zero.ogg", inputs / "sock.flac"
    os.mkfifo(fifo)
    os.symlink("/dev/zero", device)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    code = CHILD.format(
        tests=str(Path(__file__).parents[1]),
        folder=str(inputs),
        model=str(tiny_onnx),
        out=str(tmp_path / "out"),
    )
    try:
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.close()
        with contextlib.suppress(OSError):  # release a reader a regression left blocked
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert child.returncode == 0, child.stderr[-2000:]
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    assert sorted(map(tuple, outcome["failures"])) == [
        (str(fifo), "is a FIFO (named pipe), not an audio file: not opened"),
        (str(sock), "is a socket, not an audio file: not opened"),
        (str(device), "is a character device, not an audio file: not opened"),
    ]
    assert outcome["rows"] == list(reference.submission["row_id"])


# --- point 7: any file name -------------------------------------------------------------------


def write_tone_as(path: Path, seconds: float, scratch: Path) -> None:
    """A tone under any name: soundfile cannot open a name that is not UTF-8, so it writes a
    plain name in `scratch` and the file is renamed."""
    write_tone(scratch / "scratch.wav", seconds)
    os.rename(os.fsencode(scratch / "scratch.wav"), os.fsencode(path))


def test_undecodable_and_control_character_names_are_skipped_and_never_crash(
    inputs, tiny_onnx, tmp_path, reference
):
    """A name that is not UTF-8 crashed the run with --resume or placeholder rows; a carriage
    return in a name was written unquoted (4 row ids read back as 6 rows)."""
    not_utf8 = Path(os.fsdecode(bytes(inputs) + b"/bad\xffname.wav"))
    with_cr = inputs / "cr\rname.wav"
    write_tone_as(not_utf8, 6.0, tmp_path)
    write_tone(with_cr, 12.0)
    write_tone(inputs / "sub\u2028dir.flac", 6.0)  # a line separator: a line break to some readers
    result = run_folder(inputs, tiny_onnx, tmp_path, input=PLACEHOLDERS, output={"resume": True})
    reasons = {f.path: f.reason for f in result.failures}
    assert set(reasons) == {str(not_utf8), str(with_cr), str(inputs / "sub\u2028dir.flac")}
    assert reasons[str(not_utf8)] == (
        "its name bad\\xffname.wav is not valid UTF-8: its row ids would not read back from a "
        "CSV as written; rename it"
    )
    assert reasons[str(with_cr)].startswith("its name cr\\rname.wav holds the control character")
    assert list(result.submission["row_id"]) == list(reference.submission["row_id"])
    assert list(read_back(result.output_path)["row_id"]) == list(reference.submission["row_id"])
    assert_good_rows_intact(result, reference)
    report = json.loads(result.report_path.read_text())
    assert len(report["skipped"]) == 3
    shown = summary(result, 5.0)
    assert "skipped: " in shown and "bad\\xffname.wav" in shown
    shown.encode("utf-8")  # printable anywhere: no lone surrogates


def test_a_non_utf8_folder_name_is_skipped_with_resume(inputs, tiny_onnx, tmp_path, reference):
    folder = Path(os.fsdecode(bytes(inputs) + b"/site\xe9"))
    folder.mkdir()
    write_tone_as(folder / "dawn.wav", 6.0, tmp_path)
    result = run_folder(inputs, tiny_onnx, tmp_path, output={"resume": True})
    assert [f.path for f in result.failures] == [str(folder / "dawn.wav")]
    assert "is not valid UTF-8" in result.failures[0].reason
    assert_good_rows_intact(result, reference)


def test_a_symlink_loop_with_resume_is_skipped_not_a_crash(inputs, tiny_onnx, tmp_path, reference):
    """Path.resolve raises RuntimeError on a loop: the journal key and the output checks must
    not use it on a recording."""
    loop = inputs / "loop.ogg"
    os.symlink("loop.ogg", loop)
    result = run_folder(inputs, tiny_onnx, tmp_path, output={"resume": True})
    assert [(f.path, f.reason) for f in result.failures] == [
        (str(loop), "cannot be opened (Too many levels of symbolic links)")
    ]
    assert_good_rows_intact(result, reference)
