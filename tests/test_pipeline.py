"""The whole path: folder of recordings -> submission.csv, through both backends."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import DEMO_CODES, make_config, write_tone

from birdinfer.errors import ModelError, SubmissionError
from birdinfer.inference.ensemble import Ensemble
from birdinfer.inference.run import run

pytestmark = pytest.mark.slow
FLOAT_NOISE = 1e-5  # different batch/thread splits change float summation order, nothing more


def scores_of(result) -> np.ndarray:
    return result.submission.iloc[:, 1:].to_numpy()


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


def test_ensemble_is_the_weighted_mean_of_its_members(soundscape_dir, tiny_onnx, tmp_path):
    from conftest import export_tiny_model

    other = export_tiny_model(tmp_path / "other", seed=7)
    single = [
        scores_of(run(make_config(soundscape_dir, m, tmp_path / f"{i}.csv")))
        for i, m in enumerate([tiny_onnx, other])
    ]
    config = make_config(soundscape_dir, tiny_onnx, tmp_path / "e.csv")
    config = type(config)(
        **{
            **config.__dict__,
            "models": (
                type(config.models[0])(str(tiny_onnx), 1.0),
                type(config.models[0])(str(other.with_suffix(".xml")), 3.0),
            ),
        }
    )
    ensemble = scores_of(run(config))
    np.testing.assert_allclose(ensemble, 0.25 * single[0] + 0.75 * single[1], atol=1e-5)


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


def test_sample_submission_with_unknown_classes_is_refused(soundscape_dir, tiny_onnx, tmp_path):
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("row_id,hooowl,nosuchbird\n")
    config = make_config(
        soundscape_dir, tiny_onnx, tmp_path / "s.csv", output={"sample_submission": str(sample)}
    )
    with pytest.raises(SubmissionError, match="nosuchbird"):
        Ensemble(config)


def test_model_that_contradicts_the_config_is_refused_naming_each_key(
    soundscape_dir, tiny_onnx, tmp_path
):
    config = make_config(
        soundscape_dir,
        tiny_onnx,
        tmp_path / "s.csv",
        mel={"n_mels": 128, "n_fft": 1024, "hop_length": 320},
    )
    with pytest.raises(ModelError, match=r"mel\.n_mels: config 128, model 64"):
        Ensemble(config)


def test_model_without_metadata_is_refused(tmp_path, soundscape_dir):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMean", ["mel"], ["logits"], axes=[2, 3], keepdims=0)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["b", 1, 64, 501])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 1])],
    )
    path = tmp_path / "bare.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(ModelError, match=r"bare\.onnx.*birdinfer\.card"):
        Ensemble(make_config(soundscape_dir, path, tmp_path / "s.csv"))


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
    assert {"zero_length.ogg", "text_named.ogg", "header_only.wav"} <= set(skipped)
    assert "truncated.ogg" in skipped or any("truncated" in r for r in result.submission["row_id"])
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
        output={"empty_input_fallback": str(soundscape_dir)},
    )
    assert len(run(config).submission) == 16
    limited = make_config(
        tmp_path / "empty",
        tiny_onnx,
        tmp_path / "l.csv",
        output={"empty_input_fallback": str(soundscape_dir), "empty_input_fallback_files": 1},
    )
    assert len(run(limited).submission) == 12  # the first file alone (sorted: the 60 s OGG)


def test_predict_file_matches_the_run(reference, soundscape_dir, tiny_onnx, tmp_path):
    ensemble = Ensemble(make_config(soundscape_dir, tiny_onnx, tmp_path / "s.csv"))
    path = sorted(soundscape_dir.iterdir())[1]
    result = ensemble.predict_file(path)
    rows = reference.submission.set_index("row_id").loc[result.row_ids]
    np.testing.assert_allclose(result.scores, rows.to_numpy(), atol=FLOAT_NOISE)


def test_resampled_input_scores_close_to_native(tmp_path, tiny_onnx):
    folder = tmp_path / "rates"
    folder.mkdir()
    write_tone(folder / "native.wav", 5.0, 32000, freq=3000.0, subtype="FLOAT")
    write_tone(folder / "at48k.wav", 5.0, 48000, freq=3000.0, subtype="FLOAT")
    frame = run(make_config(folder, tiny_onnx, tmp_path / "s.csv")).submission.set_index("row_id")
    np.testing.assert_allclose(frame.loc["at48k_5"], frame.loc["native_5"], atol=0.02)


def test_a_reused_pipeline_reports_each_runs_own_stage_times(soundscape_dir, tiny_onnx, tmp_path):
    config = make_config(soundscape_dir, tiny_onnx, tmp_path / "s.csv")
    ensemble = Ensemble(config)
    first = run(config, ensemble)
    second = run(config, ensemble)
    assert ensemble.timer.windows == 16  # this run's windows, not 32
    assert set(second.stage_seconds) == set(first.stage_seconds)
