"""Non-finite model outputs never reach a submission (issue 12, point 2).

The model here gives NaN (or Inf) for every class of a silent window and finite logits for the
tones: a silent file beside good ones is failed with the member and the count, or scored by the
other members, as `inference.non_finite` says; the written CSV never holds an empty cell.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import DEMO_CODES
from tests.hostile_helpers import (
    assert_good_rows_intact,
    copy_good,
    pooled_onnx,
    read_back,
    reported_warnings,
    rows_of,
    run_folder,
    write_good,
)

pytestmark = pytest.mark.slow  # the models are exported with torch
BELOW = -90.0  # dB: digital silence is -100, the tones' windows -53 to -83


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "nan": pooled_onnx(folder / "nan.onnx", DEMO_CODES, below=BELOW),
        "inf": pooled_onnx(folder / "inf.onnx", DEMO_CODES, below=BELOW, value=float("inf")),
        "plain": pooled_onnx(folder / "plain.onnx", DEMO_CODES, seed=1),
    }


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_good(tmp_path_factory.mktemp("good"))


@pytest.fixture
def inputs(good, tmp_path):
    folder = copy_good(good, tmp_path / "in")
    sf.write(str(folder / "silent.wav"), np.zeros(8 * 32000, np.float32), 32000)  # 2 rows
    return folder


def run_with(folder, models, out, non_finite="fail", **sections):
    config = {"models": [str(m) for m in models], **sections}
    return run_folder(folder, models[0], out, inference={"non_finite": non_finite}, **config)


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_a_member_giving_non_finite_scores_fails_the_file(good, inputs, models, tmp_path, kind):
    reference = run_with(good, [models[kind]], tmp_path / "reference")
    result = run_with(inputs, [models[kind]], tmp_path / "out")
    silent = inputs / "silent.wav"
    assert [(f.path, f.reason) for f in result.failures] == [
        (str(silent), f"model pooled:{kind}.onnx gave NaN/Inf for 2 of 2 windows")
    ]
    assert rows_of(result, "silent") == []
    assert_good_rows_intact(result, reference)
    written = read_back(result.output_path)
    assert written.notna().all().all() and np.isfinite(written.iloc[:, 1:].to_numpy()).all()


def test_a_failed_file_gets_placeholder_rows_when_asked(inputs, models, tmp_path):
    result = run_with(
        inputs, [models["nan"]], tmp_path / "out", input={"placeholder_rows_for_skipped": True}
    )
    assert [f.path for f in result.failures] == [str(inputs / "silent.wav")]
    frame = result.submission.set_index("row_id")
    assert rows_of(result, "silent") == ["silent_5", "silent_10"]
    assert (frame.loc[["silent_5", "silent_10"]].to_numpy() == 0.0).all()
    assert read_back(result.output_path).notna().all().all()


def test_drop_member_scores_the_file_with_the_others(good, inputs, models, tmp_path):
    both = [models["nan"], models["plain"]]
    result = run_with(inputs, both, tmp_path / "out", non_finite="drop_member")
    plain_only = run_with(inputs, [models["plain"]], tmp_path / "plain")
    assert result.failures == []
    ids = ["silent_5", "silent_10"]
    assert rows_of(result, "silent") == ids
    np.testing.assert_array_equal(
        result.submission.set_index("row_id").loc[ids].to_numpy(),
        plain_only.submission.set_index("row_id").loc[ids].to_numpy(),
    )
    assert reported_warnings(result, inputs / "silent.wav") == [
        "model pooled:nan.onnx gave NaN/Inf for 2 of 2 windows: dropped for this file"
    ]
    # the good files are scored by both members, as in a run over them alone
    assert_good_rows_intact(result, run_with(good, both, tmp_path / "reference"))


def test_drop_member_fails_a_file_no_member_can_score(inputs, models, tmp_path):
    result = run_with(inputs, [models["nan"], models["inf"]], tmp_path / "out", "drop_member")
    assert [f.reason for f in result.failures] == [
        "model pooled:nan.onnx gave NaN/Inf for 2 of 2 windows; "
        "model pooled:inf.onnx gave NaN/Inf for 2 of 2 windows (no member left)"
    ]
    assert rows_of(result, "silent") == []


def test_drop_member_fails_a_file_whose_other_members_leave_columns_uncovered(
    inputs, models, tmp_path
):
    """Issue 21, point 2: the columns only the dropped member covered are not written as 0.0;
    as at load, a column no member covers is refused, and the reason names the columns."""
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("label,column\n" + "".join(f"{c},{c}\n" for c in DEMO_CODES[:2]))
    members = [
        {"path": str(models["nan"])},
        {"path": str(models["plain"]), "mapping": str(mapping)},
    ]
    result = run_folder(
        inputs,
        models["nan"],
        tmp_path / "out",
        inference={"non_finite": "drop_member"},
        models=members,
    )
    assert [(f.path.rsplit("/", 1)[-1], f.reason) for f in result.failures] == [
        (
            "silent.wav",
            "model pooled:nan.onnx gave NaN/Inf for 2 of 2 windows (the members left cover no "
            f"score for columns {', '.join(DEMO_CODES[2:])})",
        )
    ]
    assert rows_of(result, "silent") == []
    skipped = json.loads(result.report_path.read_text())["skipped"]
    assert [s["reason"] for s in skipped] == [f.reason for f in result.failures]
