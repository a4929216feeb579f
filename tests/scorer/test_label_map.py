"""A member with its own label list (a foundation model), mapped onto the submission's columns:
the columns it covers are averaged with the other members, the rest come from them alone. No
torch: tiny models from the committed model's generator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from birdinfer.config import BudgetConfig, from_dict
from birdinfer.errors import ModelError
from birdinfer.runner import TimeGuard, run
from birdinfer.scorer import Ensemble
from birdinfer.scorer.label_map import ColumnMap
from birdinfer.scorer.postprocess import covered_mean, percentile_ranks
from tests.helpers import DEMO_CODES, tiny_card, tiny_model

# A foundation model's labels: scientific names, one the competition lacks, none for some codes.
LABELS = ["Strix varia", "Turdus migratorius", "Homo sapiens", "Cardinalis cardinalis", "Sp. x"]
# DEMO_CODES: hooowl harthr ... (the demo's seven species); two labels feed one column.
MAPPING = [
    ("Strix varia", DEMO_CODES[0]),
    ("Turdus migratorius", DEMO_CODES[1]),
    ("Sp. x", DEMO_CODES[1]),
    ("Cardinalis cardinalis", DEMO_CODES[3]),
]


def write_mapping(path, pairs, header="label,column"):
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    return path


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("label_map")
    full = tiny_model(folder / "full", seed=4, openvino=False)
    own = tiny_model(folder / "own", seed=5, card=tiny_card(classes=LABELS), openvino=False)
    return full, own, write_mapping(folder / "mapping.csv", MAPPING)


def config_for(folder, tmp_path, models, **sections):
    return from_dict(
        {
            "input_dir": str(folder),
            "models": models,
            "output": {"submission": str(tmp_path / "s.csv"), "progress": False},
            **sections,
        }
    )


def test_a_column_fed_by_two_labels_takes_their_maximum():
    columns = ColumnMap.from_file_pairs = None  # noqa: F841 - (documenting: pairs come from a file)
    mapping = ColumnMap(((0,), (1, 4), (), (3,)))
    scores = np.array([[0.1, 0.2, 0.9, 0.3, 0.7]], np.float32)
    np.testing.assert_allclose(mapping.apply(scores), [[0.1, 0.7, 0.0, 0.3]], atol=1e-7)
    assert mapping.covers.tolist() == [True, True, False, True]


def test_covered_mean_leaves_a_member_out_of_the_columns_it_does_not_cover():
    a = np.array([[0.2, 0.4, 0.6]], np.float32)
    b = np.array([[0.8, 0.0, 0.0]], np.float32)  # covers the first column only
    covers = [np.array([True, True, True]), np.array([True, False, False])]
    out = covered_mean([a, b], [1.0, 3.0], covers)
    np.testing.assert_allclose(out, [[0.25 * 0.2 + 0.75 * 0.8, 0.4, 0.6]], atol=1e-7)


def test_mapped_member_scores_its_columns_and_leaves_the_rest(soundscape_dir, members, tmp_path):
    full, own, mapping = members
    models = [str(full), {"path": str(own), "mapping": str(mapping), "weight": 2.0}]
    mixed = run(config_for(soundscape_dir, tmp_path, models))
    report = json.loads(mixed.report_path.read_text())
    described = report["models"][1]
    uncovered = [DEMO_CODES[i] for i in (2, 4, 5, 6)]
    assert described["columns_not_covered"] == uncovered
    alone = run(config_for(soundscape_dir, tmp_path, [str(full)]))
    # The model alone, its own labels as the columns: what the mapping picks from.
    labels = run(config_for(soundscape_dir, tmp_path, [str(own)]))
    assert list(labels.submission.columns[1:]) == LABELS
    for both, one, own_labels in zip(mixed.files, alone.files, labels.files, strict=True):
        raw = both.member_scores[1]
        picked = own_labels.scores
        np.testing.assert_allclose(raw[:, 0], picked[:, 0], atol=1e-7)
        np.testing.assert_allclose(raw[:, 1], picked[:, [1, 4]].max(axis=1), atol=1e-7)
        np.testing.assert_allclose(raw[:, 3], picked[:, 3], atol=1e-7)
        expected = one.scores.copy()
        covered = [0, 1, 3]
        expected[:, covered] = (one.scores[:, covered] + 2.0 * raw[:, covered]) / 3.0
        np.testing.assert_allclose(both.scores, expected, atol=1e-6)
        # The member's own columns really move the ensemble: its scores differ from the other's.
        assert np.abs(raw[:, covered] - one.scores[:, covered]).max() > 1e-2


def write_sample(tmp_path):
    path = tmp_path / "sample_submission.csv"
    path.write_text("row_id," + ",".join(DEMO_CODES) + "\n")
    return path


def test_rank_blending_ranks_a_mapped_member_on_its_own_columns(soundscape_dir, members, tmp_path):
    full, own, mapping = members
    models = [str(full), {"path": str(own), "mapping": str(mapping)}]
    result = run(config_for(soundscape_dir, tmp_path, models, inference={"combine": "rank_mean"}))
    first = np.concatenate([r.member_scores[0] for r in result.files])
    second = np.concatenate([r.member_scores[1] for r in result.files])
    blended = np.concatenate([r.scores for r in result.files])
    ranks = [percentile_ranks(first), percentile_ranks(second)]
    np.testing.assert_allclose(blended[:, 2], ranks[0][:, 2], atol=1e-6)  # not covered
    np.testing.assert_allclose(blended[:, 0], (ranks[0][:, 0] + ranks[1][:, 0]) / 2, atol=1e-6)


def test_columns_nobody_covers_are_refused_by_name(soundscape_dir, members, tmp_path):
    _, own, mapping = members
    config = config_for(
        soundscape_dir,
        tmp_path,
        [{"path": str(own), "mapping": str(mapping)}],
        output={
            "submission": str(tmp_path / "s.csv"),
            "sample_submission": str(write_sample(tmp_path)),
        },
    )
    with pytest.raises(ModelError, match=r"4 submission columns are covered by no member"):
        Ensemble(config)


@pytest.mark.parametrize(
    "pairs, header, problem",
    [
        ([("Corvus corax", DEMO_CODES[0])], "label,column", "names 1 labels the model does not"),
        (MAPPING, "taxon,code", r"needs the columns \['label', 'column'\]"),
        ([("Strix varia", "")], "label,column", "blank label or column on CSV line 2"),
    ],
)
def test_a_bad_mapping_file_is_refused_with_the_reason(
    soundscape_dir, members, tmp_path, pairs, header, problem
):
    full, own, _ = members
    bad = write_mapping(tmp_path / "bad.csv", pairs, header)
    config = config_for(
        soundscape_dir, tmp_path, [str(full), {"path": str(own), "mapping": str(bad)}]
    )
    with pytest.raises(ModelError, match=problem):
        Ensemble(config)


def test_the_time_guard_never_leaves_a_mapped_member_alone(soundscape_dir, members, tmp_path):
    """Budget too short for anything: the guard drops the mapped member (the last one whose loss
    keeps every column covered), and falls back only to a member that covers every column."""
    full, own, mapping = members
    models = [{"path": str(own), "mapping": str(mapping)}, str(full)]
    ensemble = Ensemble(config_for(soundscape_dir, tmp_path, models))
    assert not ensemble.covers_all((0,)) and ensemble.covers_all((1,))
    guard = TimeGuard(ensemble, [60.0] * 4, BudgetConfig(enabled=True), 0.001, clock=lambda: 0.0)
    assert guard._droppable((0, 1)) == 0  # dropping the full member would leave columns bare
    guard.done_audio, guard.files_done = 60.0, 1
    guard.clock = lambda: 10.0
    guard._replan()
    assert guard.active == (1,)
