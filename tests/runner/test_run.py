"""A run end to end: a folder of recordings in, submission.csv and its report out.

What its results do not depend on (workers, threads, batch size, backend, file order), the
inputs it skips, reports or fills in, and an empty folder.
"""

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdinfer.output import submission_frame
from birdinfer.runner import run
from birdinfer.scorer import Ensemble, StreamingEngine, score_file, stage_timer
from tests.helpers import DEMO_CODES, corrupted_audio, make_config, scores_of, write_tone

FLOAT_NOISE = 1e-5  # different batch/thread splits change float summation order, nothing more
# The stated tolerance: the same input, config and runtime give probabilities within this, whatever
# the workers, threads, batch size and file order. Measured here with the tiny model: at most
# 1.2e-7 (one float32 step near 0.5) on either runtime; a CPU whose kernels split sums by batch or
# thread count may differ in the last bits. ONNX Runtime and OpenVINO differ by up to 1.8e-6.
DETERMINISM_ATOL = 1e-6


@pytest.fixture(scope="module")
def reference(soundscape_dir, tiny_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "submission.csv"
    return run(make_config(soundscape_dir, tiny_onnx, out, inference={"workers": 1, "threads": 1}))


def test_rows_columns_and_values(reference, soundscape_dir):
    frame = reference.submission
    stems = sorted(p.stem for p in soundscape_dir.iterdir())
    expected = [f"{stems[0]}_{e}" for e in range(5, 65, 5)]  # 60 s OGG
    expected += [f"{stems[1]}_{e}" for e in (5, 10, 15)]  # 12 s WAV: partial last window
    expected += [f"{stems[2]}_5"]  # 3 s FLAC: one padded window
    assert sorted(frame["row_id"]) == sorted(expected)
    assert list(frame.columns) == ["row_id", *DEMO_CODES]
    values = scores_of(reference)
    assert ((values >= 0) & (values <= 1)).all() and values.std() > 0.01


def test_written_file_and_report(reference):
    written = pd.read_csv(reference.output_path, dtype={"row_id": str})
    pd.testing.assert_frame_equal(written, reference.submission, check_dtype=False, atol=1e-6)
    report = json.loads(reference.report_path.read_text())
    assert report["files_processed"] == 3 and report["windows"] == 16
    assert report["skipped"] == []
    assert {"decode", "mel", "postprocess", "write"} <= set(report["stage_seconds"])


# --- what the results do not depend on ------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_count_does_not_change_results(
    reference, soundscape_dir, tiny_onnx, tmp_path, workers
):
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "s.csv", inference={"workers": workers, "threads": 1}
    )
    result = run(config)
    assert result.submission["row_id"].tolist() == reference.submission["row_id"].tolist()
    np.testing.assert_allclose(scores_of(result), scores_of(reference), atol=FLOAT_NOISE)


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_batch_size_does_not_change_results(
    reference, soundscape_dir, tiny_onnx, tmp_path, batch_size
):
    config = make_config(
        soundscape_dir,
        tiny_onnx,
        tmp_path / "s.csv",
        inference={"workers": 1, "threads": 1, "batch_size": batch_size},
    )
    np.testing.assert_allclose(scores_of(run(config)), scores_of(reference), atol=FLOAT_NOISE)


@pytest.mark.parametrize("suffix", [".onnx", ".xml"])
def test_thread_count_does_not_change_results(
    reference, soundscape_dir, tiny_onnx, tmp_path, suffix
):
    config = make_config(
        soundscape_dir,
        tiny_onnx.with_suffix(suffix),
        tmp_path / "s.csv",
        inference={"workers": 1, "threads": 2},
    )
    np.testing.assert_allclose(scores_of(run(config)), scores_of(reference), atol=FLOAT_NOISE)


@pytest.fixture(scope="module")
def openvino_reference(soundscape_dir, tiny_xml, tmp_path_factory):
    out = tmp_path_factory.mktemp("openvino_reference") / "submission.csv"
    return run(make_config(soundscape_dir, tiny_xml, out, inference={"workers": 1, "threads": 1}))


@pytest.mark.parametrize(
    ("workers", "threads", "batch_size", "suffix"),
    [(2, 2, 16, ".onnx"), (2, 1, 3, ".onnx"), (1, 2, 1, ".xml"), (2, 2, 64, ".xml")],
)
def test_same_submission_whatever_workers_threads_and_batch(
    reference,
    openvino_reference,
    soundscape_dir,
    tiny_onnx,
    tmp_path,
    workers,
    threads,
    batch_size,
    suffix,
):
    """Each runtime against its own single-threaded run (the two runtimes agree to FLOAT_NOISE:
    see the thread count test above and tests/models)."""
    expected = openvino_reference if suffix == ".xml" else reference
    inference = {"workers": workers, "threads": threads, "batch_size": batch_size}
    model = tiny_onnx.with_suffix(suffix)
    config = make_config(soundscape_dir, model, tmp_path / "s.csv", inference=inference)
    frame = run(config).submission
    assert frame["row_id"].tolist() == expected.submission["row_id"].tolist()
    np.testing.assert_allclose(
        frame.iloc[:, 1:].to_numpy(), scores_of(expected), atol=DETERMINISM_ATOL
    )


def test_same_results_whatever_the_file_order(reference, soundscape_dir, tiny_onnx, tmp_path):
    """The engine given the files in reverse order scores each file exactly as before, and a
    folder whose files were written in another order gives the same submission."""
    config = make_config(soundscape_dir, tiny_onnx, tmp_path / "s.csv", inference={"workers": 2})
    ensemble = Ensemble(config)
    files = sorted(soundscape_dir.iterdir())
    results = StreamingEngine(ensemble, feature_workers=2).run(files[::-1]).results
    frame = submission_frame(results, ensemble.columns).set_index("row_id").sort_index()
    expected = reference.submission.set_index("row_id").sort_index()
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), atol=DETERMINISM_ATOL)

    copied = tmp_path / "copied"
    copied.mkdir()
    for path in files[::-1]:  # created newest-first: directory order differs from the original
        shutil.copy(path, copied / path.name)
    again = run(make_config(copied, tiny_onnx, tmp_path / "t.csv")).submission
    pd.testing.assert_frame_equal(
        again, reference.submission, atol=DETERMINISM_ATOL, check_exact=False
    )


def test_one_file_is_scored_exactly_as_the_run_scores_it(soundscape_dir, tiny_onnx, tmp_path):
    """One per-file driver: a single file goes through the same engine, chunked the same way,
    with a batch that splits its rows unevenly."""
    config = make_config(soundscape_dir, tiny_onnx, tmp_path / "s.csv", inference={"batch_size": 3})
    ensemble = Ensemble(config)
    whole = run(config, ensemble=ensemble)
    for path, in_run in zip(sorted(soundscape_dir.iterdir()), whole.files, strict=True):
        alone = score_file(ensemble, path)
        assert alone.row_ids == in_run.row_ids
        np.testing.assert_array_equal(alone.scores, in_run.scores)


def test_resampled_input_scores_close_to_native(tmp_path, tiny_onnx):
    folder = tmp_path / "rates"
    folder.mkdir()
    write_tone(folder / "native.wav", 5.0, 32000, freq=3000.0, subtype="FLOAT")
    write_tone(folder / "at48k.wav", 5.0, 48000, freq=3000.0, subtype="FLOAT")
    frame = run(make_config(folder, tiny_onnx, tmp_path / "s.csv")).submission.set_index("row_id")
    np.testing.assert_allclose(frame.loc["at48k_5"], frame.loc["native_5"], atol=0.02)


def test_sample_submission_sets_column_order(reference, soundscape_dir, tiny_onnx, tmp_path):
    shuffled = ["41663", *reversed([c for c in DEMO_CODES if c != "41663"])]
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id," + ",".join(shuffled) + "\n")
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "s.csv", output={"sample_submission": str(sample)}
    )
    frame = run(config).submission
    assert list(frame.columns) == ["row_id", *shuffled]
    reordered = reference.submission[["row_id", *shuffled]]
    np.testing.assert_allclose(
        frame.iloc[:, 1:].to_numpy(), reordered.iloc[:, 1:].to_numpy(), atol=FLOAT_NOISE
    )


# --- inputs that are skipped, reported or filled in ----------------------------------------------


def test_bad_files_are_skipped_reported_and_cost_nothing_else(
    reference, soundscape_dir, tiny_onnx, tmp_path
):
    folder = tmp_path / "mixed"
    shutil.copytree(soundscape_dir, folder)
    (folder / "zero_length.ogg").write_bytes(b"")
    (folder / "text_named.ogg").write_text("this is a text file, not audio\n")
    good_ogg = next(folder.glob("*.ogg")).read_bytes()
    (folder / "truncated.ogg").write_bytes(good_ogg[:3000] + bytes(5000))
    sf.write(str(folder / "header_only.wav"), np.zeros((0, 2), np.float32), 44100)
    (folder / "notes.txt").write_text("field notes")
    nan_audio = np.full(32000 * 5, 0.1, np.float32)
    nan_audio[:50] = np.nan
    sf.write(str(folder / "with_nan.wav"), nan_audio, 32000, subtype="FLOAT")

    result = run(make_config(folder, tiny_onnx, tmp_path / "s.csv"))
    skipped = {f.path.split("/")[-1]: f.reason for f in result.failures}
    assert set(skipped) == {"zero_length.ogg", "text_named.ogg", "header_only.wav", "truncated.ogg"}
    # 3,000 bytes of an OGG end inside its Vorbis setup header: nothing of it can be decoded.
    assert skipped["truncated.ogg"].startswith("cannot be decoded as audio")
    assert not [r for r in result.submission["row_id"] if r.startswith("truncated_")]
    assert "no audio frames" in skipped["header_only.wav"]
    assert [p.name for p in result.ignored] == ["notes.txt"]
    frame = result.submission.set_index("row_id")
    ref = reference.submission.set_index("row_id")
    np.testing.assert_allclose(frame.loc[ref.index].to_numpy(), ref.to_numpy(), atol=FLOAT_NOISE)
    assert "with_nan_5" in frame.index
    report = json.loads(result.report_path.read_text())
    assert {s["path"].split("/")[-1] for s in report["skipped"]} == set(skipped)
    assert report["warnings"] == [
        {"path": str(folder / "with_nan.wav"), "warning": "50 NaN/Inf samples set to zero"}
    ]


@pytest.fixture
def same_stems(tmp_path):
    folder = tmp_path / "sites"
    for site in ("siteA", "siteB"):
        (folder / site).mkdir(parents=True)
        write_tone(folder / site / "dawn.wav", 10.0)
    write_tone(folder / "siteA" / "dusk.wav", 5.0)
    return folder


def test_same_stem_in_two_folders_is_skipped_with_a_clear_reason(same_stems, tiny_onnx, tmp_path):
    result = run(make_config(same_stems, tiny_onnx, tmp_path / "s.csv"))
    assert result.submission["row_id"].tolist() == ["dusk_5"]
    reasons = {f.path: f.reason for f in result.failures}
    a, b = str(same_stems / "siteA" / "dawn.wav"), str(same_stems / "siteB" / "dawn.wav")
    assert set(reasons) == {a, b}
    assert reasons[a].startswith(f"its stem 'dawn' is also the stem of {b}: their row ids")
    assert "input.duplicate_stems: path" in reasons[a]


def test_same_stem_gets_path_row_ids_when_configured(same_stems, tiny_onnx, tmp_path):
    config = make_config(
        same_stems, tiny_onnx, tmp_path / "s.csv", input={"duplicate_stems": "path"}
    )
    result = run(config)
    assert result.failures == []
    assert result.submission["row_id"].tolist() == [
        "siteA/dawn_5",
        "siteA/dawn_10",
        "siteA/dusk_5",
        "siteB/dawn_5",
        "siteB/dawn_10",
    ]


def test_skipped_files_get_placeholder_rows_when_configured(soundscape_dir, tiny_onnx, tmp_path):
    """A file whose decode fails after its header was read keeps its header's rows; one whose
    header is unreadable gets the nominal length's; both are still reported as skipped."""
    folder = tmp_path / "in"
    shutil.copytree(soundscape_dir, folder)
    (folder / "garbage.ogg").write_text("not audio at all")
    # a 12 s FLAC whose damaged frame fails its CRC
    (folder / "crc.flac").write_bytes(corrupted_audio("flac", "middle"))
    config = make_config(
        folder,
        tiny_onnx,
        tmp_path / "s.csv",
        input={"placeholder_rows_for_skipped": True, "skipped_file_seconds": 10},
        budget={"placeholder_score": 0.25},
    )
    result = run(config)
    assert sorted(Path(f.path).name for f in result.failures) == ["crc.flac", "garbage.ogg"]
    rows = result.submission.set_index("row_id")
    assert (rows.loc[["garbage_5", "garbage_10"]].to_numpy() == 0.25).all()
    assert "garbage_15" not in rows.index
    # The FLAC's header was readable: 12 s, so three rows.
    assert [r for r in rows.index if r.startswith("crc_")] == ["crc_5", "crc_10", "crc_15"]
    assert (rows.loc[["crc_5", "crc_10", "crc_15"]].to_numpy() == 0.25).all()
    plain = run(make_config(folder, tiny_onnx, tmp_path / "t.csv")).submission
    assert not any(r.startswith(("garbage_", "crc_")) for r in plain["row_id"])
    scored = plain.set_index("row_id")
    np.testing.assert_array_equal(rows.loc[scored.index].to_numpy(), scored.to_numpy())


def test_empty_folder_gives_a_header_only_submission(tmp_path, tiny_onnx):
    (tmp_path / "empty").mkdir()
    result = run(make_config(tmp_path / "empty", tiny_onnx, tmp_path / "s.csv"))
    assert result.output_path.read_text().strip() == ",".join(["row_id", *DEMO_CODES])


def test_empty_folder_falls_back_to_the_configured_folder(tmp_path, tiny_onnx, soundscape_dir):
    (tmp_path / "empty").mkdir()
    config = make_config(
        tmp_path / "empty",
        tiny_onnx,
        tmp_path / "s.csv",
        input={"empty_input_fallback": str(soundscape_dir)},
    )
    assert len(run(config).submission) == 16
    limited = make_config(
        tmp_path / "empty",
        tiny_onnx,
        tmp_path / "l.csv",
        input={"empty_input_fallback": str(soundscape_dir), "empty_input_fallback_files": 1},
    )
    assert len(run(limited).submission) == 12  # the first file alone (sorted: the 60 s OGG)


# --- a reused ensemble ---------------------------------------------------------------------------


class StepClock:
    """perf_counter for the stage timer: each thread's clock moves one second per reading, so a
    run's stage seconds count its timed steps, the same for the same work whatever the machine."""

    def __init__(self):
        self._local = threading.local()

    def perf_counter(self) -> float:
        self._local.now = getattr(self._local, "now", 0.0) + 1.0
        return self._local.now


def test_a_reused_ensemble_reports_each_runs_own_stage_times(
    soundscape_dir, tiny_onnx, tmp_path, monkeypatch
):
    monkeypatch.setattr(stage_timer, "time", StepClock())
    # One window per model call and one feature worker: both runs time the same steps.
    inference = {"workers": 1, "batch_size": 1}
    config = make_config(soundscape_dir, tiny_onnx, tmp_path / "s.csv", inference=inference)
    ensemble = Ensemble(config)
    first = run(config, ensemble)
    second = run(config, ensemble)
    assert ensemble.timer.windows == 16  # this run's windows, not 32
    assert first.stage_seconds["mel"] > 0
    assert second.stage_seconds == first.stage_seconds  # not the two runs' sums
