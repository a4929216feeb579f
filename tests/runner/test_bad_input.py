"""Bad-input matrix (issue 6, point 1): each bad file runs through `run()` beside good files.

For every case the run returns normally; a bad file is in `result.failures` and the report's
"skipped" list with its path and a reason that says what is wrong; a file that can still be used
is scored with the right rows and finite scores; the good files' rows equal those of a run over
the good files alone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import birdinfer.audio.decode as audio
import birdinfer.scorer.streaming as engine
from birdinfer.runner import run
from tests.helpers import corrupted_audio, make_config, write_tone
from tests.hostile_helpers import TIGHT, assert_good_rows_intact, time_limit

GOOD = {"good_a.wav": (7.0, 1000.0), "good_b.flac": (3.0, 3000.0)}  # 2 rows and 1 row


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    for name, (seconds, freq) in GOOD.items():
        write_tone(folder / name, seconds, freq=freq)
    return folder


@pytest.fixture(scope="module")
def reference(good_dir, tiny_onnx, tmp_path_factory):
    return run_folder(good_dir, tiny_onnx, tmp_path_factory.mktemp("reference"))


@pytest.fixture
def inputs(good_dir, tmp_path) -> Path:
    """A fresh input folder holding copies of the good files; tests add their bad file."""
    folder = tmp_path / "in"
    shutil.copytree(good_dir, folder)
    return folder


def run_folder(folder: Path, model: Path, out: Path):
    # One window per model call and one worker: scores do not depend on what else is in the run.
    inference = {"batch_size": 1, "workers": 1, "threads": 1}
    with time_limit(60):
        return run(make_config(folder, model, out / "submission.csv", inference=inference))


def assert_skipped(result, reference, path: Path, reason: str) -> None:
    """The run skipped exactly `path`, saying `reason`, and kept every good row."""
    assert [(f.path, reason in f.reason) for f in result.failures] == [(str(path), True)], (
        result.failures
    )
    report = json.loads(result.report_path.read_text())
    assert report["skipped"] == [{"path": str(path), "reason": result.failures[0].reason}]
    assert not [r for r in result.submission["row_id"] if r.startswith(f"{path.stem}_")]
    assert_good_rows_intact(result, reference)


def assert_scored(result, reference, path: Path, rows: int, warning: str | None = None):
    """`path` was scored with `rows` rows of finite scores; the good rows are unchanged."""
    assert result.failures == []
    frame = result.submission.set_index("row_id")
    ids = [f"{path.stem}_{5 * (i + 1)}" for i in range(rows)]
    assert [r for r in frame.index if r.startswith(f"{path.stem}_")] == ids
    assert np.isfinite(frame.loc[ids].to_numpy()).all()
    warnings = json.loads(result.report_path.read_text())["warnings"]
    mine = [w["warning"] for w in warnings if w["path"] == str(path)]
    assert (warning is None and mine == []) or any(warning in w for w in mine), mine
    assert_good_rows_intact(result, reference)
    return frame.loc[ids].to_numpy()


# --- corrupt bytes --------------------------------------------------------------------------

# What each damaged 12 s file gives (seeded: the same bytes every run). "skip": the reason;
# "scored": rows, and the warning in the report (None: no warning).
CORRUPT = {
    ("ogg", "header"): ("skip", "cannot be decoded as audio (Format not recognised)"),
    # libvorbis drops the damaged page and resyncs: ~0.5 s less audio, rows from the header.
    ("ogg", "middle"): ("scored", 3, "fewer than the header declares (zero-padded)"),
    ("flac", "header"): ("skip", "cannot be decoded as audio (Format not recognised)"),
    # FLAC frames carry a CRC: libFLAC refuses the damaged frame.
    ("flac", "middle"): ("skip", "decoding failed (unknown error in flac decoder)"),
    ("wav", "header"): ("skip", "cannot be decoded as audio (Format not recognised)"),
    # PCM has no checksum: 16 garbled samples are decoded as they are.
    ("wav", "middle"): ("scored", 3, None),
    # The first frame holds the Xing tag; without it libsndfile guesses the length from one
    # frame's bitrate and would stop decoding after 4.5 s (3 rows would become 1).
    ("mp3", "header"): ("skip", "header declares 4.5 s but its MPEG frames hold 12.1 s"),
    # The bytes land inside one frame's audio data and LAME writes no CRC: mpg123 decodes all
    # 12 s (a damaged frame *header* would be skipped on resync, with a warning as for OGG).
    ("mp3", "middle"): ("scored", 3, None),
}


@pytest.mark.parametrize("fmt, where", list(CORRUPT))
def test_corrupt_bytes(inputs, tiny_onnx, tmp_path, reference, fmt, where):
    path = inputs / f"damaged_{where}.{fmt}"
    path.write_bytes(corrupted_audio(fmt, where))
    result = run_folder(inputs, tiny_onnx, tmp_path)
    expected = CORRUPT[(fmt, where)]
    if expected[0] == "skip":
        assert_skipped(result, reference, path, expected[1])
    else:
        assert_scored(result, reference, path, expected[1], expected[2])


@pytest.mark.parametrize("kind", ["tasks", "processes"])
def test_a_mapped_run_reports_bad_files_as_the_engine_does(inputs, tiny_onnx, tmp_path, kind):
    """`executor.kind: auto` maps large runs on many-core nodes: a damaged file must cost the
    same there as in the engine, and be reported the same way."""
    (inputs / "damaged_header.ogg").write_bytes(corrupted_audio("ogg", "header"))
    (inputs / "damaged_middle.ogg").write_bytes(corrupted_audio("ogg", "middle"))
    engine_run = run_folder(inputs, tiny_onnx, tmp_path / "engine")
    config = make_config(
        inputs,
        tiny_onnx,
        tmp_path / kind / "submission.csv",
        inference={"batch_size": 1},
        executor={"kind": kind, "files_per_task": 2},
    )
    with time_limit(120):
        mapped = run(config)
    assert mapped.failures == engine_run.failures and len(mapped.failures) == 1
    assert mapped.submission.equals(engine_run.submission)

    def warnings(result):
        return json.loads(result.report_path.read_text())["warnings"]

    assert warnings(mapped) == warnings(engine_run) and len(warnings(mapped)) == 1


# --- files that are not audio ---------------------------------------------------------------


def header_only(path: Path) -> None:
    major = "OGG" if path.suffix == ".ogg" else "WAV"
    sf.write(str(path), np.zeros((0, 1), np.float32), 32000, format=major)
    assert path.stat().st_size > 0  # a real header (44 bytes of WAV, 3.6 kB of OGG/Vorbis)


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("empty.ogg", lambda p: p.write_bytes(b""), "is an empty file (0 bytes)"),
        ("header_only.wav", header_only, "holds no audio frames"),
        ("header_only.ogg", header_only, "holds no audio frames"),
        (
            "notes.ogg",
            lambda p: p.write_text("dawn chorus, 5 species\n" * 40),
            "cannot be decoded as audio (Format not recognised)",
        ),
        (
            "loop.ogg",
            lambda p: os.symlink("loop.ogg", p),
            "cannot be opened (Too many levels of symbolic links)",
        ),
    ],
)
def test_unusable_file_is_skipped_with_its_reason(
    inputs, tiny_onnx, tmp_path, reference, name, make, reason
):
    path = inputs / name
    make(path)
    assert_skipped(run_folder(inputs, tiny_onnx, tmp_path), reference, path, reason)


def test_folder_named_ogg_is_walked_not_reported(inputs, tiny_onnx, tmp_path, reference):
    folder = inputs / "night.ogg"
    folder.mkdir()
    inner = folder / "inner.wav"
    write_tone(inner, 4.0, freq=2000.0)
    result = run_folder(inputs, tiny_onnx, tmp_path)
    assert result.ignored == []  # a folder is neither a skipped file nor an ignored one
    assert_scored(result, reference, inner, 1)


def test_directory_symlink_loop_does_not_recurse(inputs, tiny_onnx, tmp_path, reference):
    os.symlink(".", inputs / "again")  # in/again -> in: following it would never end
    os.symlink("..", inputs / "again_up")
    result = run_folder(inputs, tiny_onnx, tmp_path)
    assert result.failures == [] and result.ignored == []
    assert list(result.submission["row_id"]) == list(reference.submission["row_id"])
    assert_good_rows_intact(result, reference)


def test_file_deleted_after_listing_is_skipped(inputs, tiny_onnx, tmp_path, reference, monkeypatch):
    doomed = inputs / "doomed.wav"
    write_tone(doomed, 6.0)
    real_reader = engine.RowReader

    def delete_then_read(path, *settings):  # find_input_files has listed it; decoding starts
        if Path(path) == doomed:
            doomed.unlink()
        return real_reader(path, *settings)

    monkeypatch.setattr(engine, "RowReader", delete_then_read)
    result = run_folder(inputs, tiny_onnx, tmp_path)
    assert_skipped(result, reference, doomed, "cannot be opened (No such file or directory)")


def test_unreadable_file_is_skipped(inputs, tiny_onnx, tmp_path, reference, monkeypatch):
    locked = inputs / "locked.flac"
    write_tone(locked, 6.0)
    locked.chmod(0)
    try:
        with open(locked, "rb"):
            readable = True  # root ignores the mode bits
    except PermissionError:
        readable = False
    if readable:  # simulate what a normal user gets: open() fails with EACCES for this file
        real_open = open

        def no_permission(file, *args, **kwargs):
            if Path(file) == locked:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(audio, "open", no_permission, raising=False)
    try:
        result = run_folder(inputs, tiny_onnx, tmp_path)
    finally:
        locked.chmod(0o644)
    assert_skipped(result, reference, locked, "cannot be opened (Permission denied)")


# --- odd but usable audio -------------------------------------------------------------------


def test_nan_and_inf_samples_are_zeroed_and_reported(inputs, tiny_onnx, tmp_path, reference):
    data = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(8 * 32000) / 32000)).astype(np.float32)
    data[1000:1100] = np.nan
    data[50000] = np.inf
    data[200000] = -np.inf
    path = inputs / "nan.wav"
    sf.write(str(path), data, 32000, subtype="FLOAT")
    result = run_folder(inputs, tiny_onnx, tmp_path)
    assert_scored(result, reference, path, 2, "102 NaN/Inf samples set to zero")


def test_huge_float_samples_are_clipped_not_nan(inputs, tiny_onnx, tmp_path, reference):
    """Float samples near float32's limit overflow the mel power: they used to give NaN rows."""
    rng = np.random.default_rng(3)
    data = (rng.standard_normal(6 * 32000) * 1e30).astype(np.float32)
    path = inputs / "huge.wav"
    sf.write(str(path), data, 32000, subtype="FLOAT")
    result = run_folder(inputs, tiny_onnx, tmp_path)
    assert_scored(result, reference, path, 2, "samples beyond +/-1e+06 clipped")


@pytest.mark.parametrize(
    "subtype, scale", [("FLOAT", 8.0), ("PCM_16", 4.0)], ids=["float_x8", "int16_hard_clipped"]
)
def test_clipped_audio_is_scored(inputs, tiny_onnx, tmp_path, reference, subtype, scale):
    t = np.arange(6 * 32000) / 32000
    data = (scale * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    path = inputs / f"clipped_{subtype}.wav"
    sf.write(str(path), data, 32000, subtype=subtype)  # libsndfile clips to int16 full scale
    assert_scored(run_folder(inputs, tiny_onnx, tmp_path), reference, path, 2)


@pytest.mark.parametrize("channels", [2, 4])
def test_multichannel_scores_as_its_mono_mix(inputs, tiny_onnx, tmp_path, reference, channels):
    mono = write_tone(inputs / "mono.wav", 6.0, freq=1800.0, subtype="FLOAT")
    path = inputs / f"ch{channels}.wav"
    write_tone(path, 6.0, channels=channels, freq=1800.0, subtype="FLOAT")
    assert sf.info(str(path)).channels == channels and mono.size == 6 * 32000
    result = run_folder(inputs, tiny_onnx, tmp_path)
    scores = assert_scored(result, reference, path, 2)
    frame = result.submission.set_index("row_id")
    np.testing.assert_allclose(scores, frame.loc[["mono_5", "mono_10"]].to_numpy(), atol=TIGHT)


RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]  # tests/audio: decoded right


@pytest.mark.parametrize("rate", RATES)
def test_any_sample_rate_is_scored(inputs, tiny_onnx, tmp_path, reference, rate):
    path = inputs / f"rate_{rate}.flac"
    write_tone(path, 10.3, sample_rate=rate, freq=1500.0)  # 3 windows, the last partial
    assert_scored(run_folder(inputs, tiny_onnx, tmp_path), reference, path, 3)


SUBTYPES = [  # tests/audio: each decodes to the written signal within one step
    ("wav", "PCM_U8"),
    ("wav", "PCM_16"),
    ("wav", "PCM_24"),
    ("wav", "PCM_32"),
    ("wav", "FLOAT"),
    ("wav", "DOUBLE"),
    ("flac", "PCM_S8"),
    ("flac", "PCM_16"),
    ("flac", "PCM_24"),
]


def test_integer_and_float_sample_formats_are_scored(inputs, tiny_onnx, tmp_path, reference):
    paths = []
    for ext, subtype in SUBTYPES:
        path = inputs / f"{subtype.lower()}_{ext}.{ext}"  # stems must differ: row ids
        write_tone(path, 5.5, subtype=subtype)
        paths.append(path)
    result = run_folder(inputs, tiny_onnx, tmp_path)
    for path in paths:
        assert_scored(result, reference, path, 2)


def test_names_with_spaces_and_non_ascii(inputs, tiny_onnx, tmp_path, reference):
    names = ["Bürgerpark dawn 05.ogg", "鳥 1.flac", "plain.flac"]
    for name in names:
        write_tone(inputs / name, 6.0, freq=2500.0)
    result = run_folder(inputs, tiny_onnx, tmp_path)
    frame = result.submission.set_index("row_id")
    for name in names:
        assert_scored(result, reference, inputs / name, 2)
    assert {"Bürgerpark dawn 05_5", "鳥 1_10"} <= set(frame.index)
    written = result.output_path.read_text(encoding="utf-8")
    assert "Bürgerpark dawn 05_10," in written and "鳥 1_5," in written
    # the same samples under an ASCII name score the same (both FLAC: a 16-bit WAV of the same
    # tone may round a sample the other way)
    np.testing.assert_allclose(frame.loc["鳥 1_5"], frame.loc["plain_5"], atol=TIGHT)
