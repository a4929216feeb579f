"""Long windows, waveform members and a foundation model, end to end, alone and in one ensemble.

Each model is built from tests/models/byom_zoo.py, exported with `birdinfer.export`, and run by
`birdinfer.run` over seeded synthetic soundscapes and over real recordings (../shared/audio,
skipped when absent). Its per-row scores are compared with the torch module run on the same
decoded audio (birdinfer's decode; for feature models birdinfer's per-window front end, computed
here window by window): a 20 s SED model over sliding windows stepped 5 s (its frames averaged
over the windows by hand, in `naive_sliding_rows`), a waveform model with torchaudio's mel inside
its graph (ONNX Runtime and OpenVINO), and a Perch-like model with its own labels, mapped onto
the columns by a file, whose embedding goes into the per-window table. Then all of them, with a
5 s CNN, in one ensemble.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import birdinfer
from birdinfer.audio import WindowReader, row_ids
from birdinfer.config import AudioConfig, MelConfig, from_dict
from birdinfer.demo import write_soundscapes
from birdinfer.frontend import LogMel
from birdinfer.output import read_windows_table
from birdinfer.scorer.postprocess import covered_mean
from birdinfer.scoring import validate_submission
from tests.helpers import naive_sliding_rows
from tests.scorer.byom_helpers import CODES, MEL, TOLERANCE, build, max_diff, zoo

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("torchaudio")

pytestmark = pytest.mark.slow

# The 2025 1st place's framing (n_fft 4096, hop 1252): 20 s give 512 mel frames, 16 frames out
# of the backbone, 4 a row. No two rows' windows line up on its hop: computed per window.
SED20_MEL = MelConfig(n_fft=4096, hop_length=1252, n_mels=64, fmin=20, fmax=16000)
REAL = ("1min.wav", "great_plains_toad.wav")  # 60 s (12 rows), and 44.1 kHz (resampled)
PERCH_LABELS = [
    "Strix varia",
    "Turdus migratorius",
    "Homo sapiens",
    "Cardinalis cardinalis",
    "Zenaida macroura",
    "Sp. x",
]
# Columns 0, 1 (from two labels: their max) and 3; the others come from the other members.
MAPPING = [
    ("Strix varia", CODES[0]),
    ("Turdus migratorius", CODES[1]),
    ("Sp. x", CODES[1]),
    ("Cardinalis cardinalis", CODES[3]),
]
COVERED = [0, 1, 3]


# --- audio and references ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """Two seeded soundscapes of 22 s and 12 s: five and three rows, the last ones partial."""
    folder = tmp_path_factory.mktemp("mixed_synthetic")
    write_soundscapes(folder, 1, seed=51, seconds=22.0, fmt="ogg")
    write_soundscapes(folder, 1, seed=52, seconds=12.0, fmt="flac")
    return folder


@pytest.fixture(scope="module")
def real(shared_audio, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mixed_real")
    for name in REAL:
        shutil.copy(shared_audio / name, folder / name)
    return folder


@pytest.fixture(params=["synthetic", "real"])
def folder(request) -> Path:
    return request.getfixturevalue(request.param)


def decoded(folder: Path, config: AudioConfig) -> list[tuple[list[str], np.ndarray]]:
    """Per file: its row ids and birdinfer's decoded inputs (rows, samples)."""
    files = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".ogg", ".flac", ".wav")):
        reader = WindowReader(path, config)
        inputs = np.concatenate(list(reader))
        files.append((row_ids(path.stem, reader.n_windows, config.window_seconds), inputs))
    return files


def frame(rows: list[tuple[list[str], np.ndarray]], columns=CODES) -> pd.DataFrame:
    ids = [i for file_ids, _ in rows for i in file_ids]
    return pd.DataFrame(np.concatenate([r for _, r in rows]), index=ids, columns=columns)


def run_members(folder: Path, tmp_path: Path, members: list, **sections) -> birdinfer.RunResult:
    config = from_dict(
        {
            "input_dir": str(folder),
            "models": members,
            "output": {
                "submission": str(tmp_path / "submission.csv"),
                "progress": False,
                **sections.pop("output", {}),
            },
            **sections,
        }
    )
    result = birdinfer.run(config)
    assert not result.failures
    return result


def rows_of(result) -> pd.DataFrame:
    return result.submission.set_index("row_id")


# --- the models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gem(tmp_path_factory, synthetic):
    module = build("gem_classifier", seed=11)
    x = torch.from_numpy(
        LogMel(MEL)(np.concatenate([w for _, w in decoded(synthetic, AudioConfig())]))
    )
    zoo("spread")(module, seed=12, heads=(module.head,), inputs=(x,))
    card = birdinfer.make_card("gem", CODES, MEL, 5.0)
    path = tmp_path_factory.mktemp("gem5") / "gem.onnx"
    return module, birdinfer.export(module, card, path, openvino=False).onnx_path


def gem_reference(module, folder: Path) -> pd.DataFrame:
    with torch.no_grad():
        return frame(
            [
                (ids, torch.sigmoid(module(torch.from_numpy(LogMel(MEL)(w)))).numpy())
                for ids, w in decoded(folder, AudioConfig())
            ]
        )


SED_WINDOWS = {
    # seconds -> front end: 20 s on the 1st place's framing; 10 s on hop 320, where the
    # overlapping windows' frames line up and are computed once (birdinfer.frontend.shared)
    20.0: SED20_MEL,
    10.0: MEL,
}


@pytest.fixture(scope="module", params=list(SED_WINDOWS))
def sed(request, tmp_path_factory, synthetic):
    seconds = request.param
    mel = SED_WINDOWS[seconds]
    module = build("sed", seed=13)
    context = AudioConfig(context_seconds=(seconds - 5.0) / 2)
    windows = np.concatenate([w for _, w in decoded(synthetic, context)])
    x = torch.from_numpy(LogMel(mel)(windows))
    zoo("spread")(module, seed=14, heads=(module.att, module.cla), inputs=(x,))
    card = birdinfer.make_card(
        f"sed{seconds:g}",
        CODES,
        mel,
        seconds,
        outputs=["framewise:probabilities", "clipwise:probabilities"],
    )
    result = birdinfer.export(module, card, tmp_path_factory.mktemp("sed") / "sed.onnx")
    return module, result, seconds


def sed_reference(module, folder: Path, seconds: float, pooling: str = "max") -> pd.DataFrame:
    """Windows centred on each row (zeros beyond the file), the torch module's frame-wise
    outputs per window, then every frame averaged over its windows and pooled per row."""
    mel = SED_WINDOWS[seconds]
    rows = []
    with torch.no_grad():
        for ids, windows in decoded(folder, AudioConfig(context_seconds=(seconds - 5.0) / 2)):
            frames = module(torch.from_numpy(LogMel(mel)(windows)))["framewise"].numpy()
            rows.append((ids, naive_sliding_rows(frames, 5.0, seconds, pooling)))
    return frame(rows)


@pytest.fixture(scope="module")
def waveform(tmp_path_factory, synthetic):
    module = build("waveform_cnn", seed=15)
    x = torch.from_numpy(np.concatenate([w for _, w in decoded(synthetic, AudioConfig())]))
    zoo("spread")(module, seed=16, heads=(module.net.head,), inputs=(x[:, None],))
    card = birdinfer.make_waveform_card("waveform_cnn", CODES, 32000, 5.0, channel_axis=True)
    result = birdinfer.export(module, card, tmp_path_factory.mktemp("wave") / "wave.onnx")
    return module, result


def waveform_reference(module, folder: Path) -> pd.DataFrame:
    with torch.no_grad():
        return frame(
            [
                (ids, torch.sigmoid(module(torch.from_numpy(w)[:, None])).numpy())
                for ids, w in decoded(folder, AudioConfig())
            ]
        )


@pytest.fixture(scope="module")
def perch(tmp_path_factory, synthetic):
    folder = tmp_path_factory.mktemp("perch")
    module = build("perch_like", seed=17, classes=len(PERCH_LABELS))
    x = torch.from_numpy(np.concatenate([w for _, w in decoded(synthetic, AudioConfig())]))
    zoo("spread")(module, seed=18, heads=(module.head,), inputs=(x,))
    card = birdinfer.make_waveform_card(
        "perch_like", PERCH_LABELS, 32000, 5.0, outputs=["label", "embedding:embedding"]
    )
    result = birdinfer.export(module, card, folder / "perch_like.onnx")
    mapping = folder / "perch_to_columns.csv"
    mapping.write_text("label,column\n" + "".join(f"{a},{b}\n" for a, b in MAPPING))
    return module, result, mapping


def perch_reference(module, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Its covered columns (a column fed by two labels takes their max), and its embeddings."""
    position = {label: i for i, label in enumerate(PERCH_LABELS)}
    scores, embeddings = [], []
    with torch.no_grad():
        for ids, w in decoded(folder, AudioConfig()):
            out = module(torch.from_numpy(w))
            labels = torch.sigmoid(out["label"]).numpy()
            columns = np.zeros((len(ids), len(CODES)), np.float32)
            for j in COVERED:
                sources = [position[a] for a, b in MAPPING if b == CODES[j]]
                columns[:, j] = labels[:, sources].max(axis=1)
            scores.append((ids, columns))
            embeddings.append((ids, out["embedding"].numpy()))
    dims = embeddings[0][1].shape[1]
    return frame(scores), frame(embeddings, columns=list(range(dims)))


# --- each kind alone ----------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_sliding_sed_rows_match_torch(sed, folder, tmp_path, pooling):
    module, result, seconds = sed
    member = {"path": str(result.onnx_path), "geometry": "sliding", "output": "framewise"}
    ours = rows_of(run_members(folder, tmp_path, [{**member, "frame_pooling": pooling}]))
    reference = sed_reference(module, folder, seconds, pooling)
    label = f"SED {seconds:g} s sliding, {pooling}, {folder.name}"
    assert max_diff(ours, reference, label) <= TOLERANCE
    # Its neighbours' windows matter: scoring each row from its own window only differs.
    centred = rows_of(run_members(folder, tmp_path, [{**member, "geometry": "centred"}]))
    assert np.abs(centred[CODES].to_numpy() - ours[CODES].to_numpy()).max() > 1e-3


def test_sliding_sed_on_openvino_matches_torch(sed, synthetic, tmp_path):
    module, result, seconds = sed
    member = {"path": str(result.openvino_path), "geometry": "sliding", "output": "framewise"}
    ours = rows_of(run_members(synthetic, tmp_path, [member]))
    reference = sed_reference(module, synthetic, seconds)
    assert max_diff(ours, reference, f"SED {seconds:g} s sliding, OpenVINO") <= TOLERANCE


def test_sliding_windows_are_one_per_row_twelve_a_minute(sed, real, tmp_path):
    _, result, seconds = sed
    member = {"path": str(result.onnx_path), "geometry": "sliding", "output": "framewise"}
    config = from_dict(
        {
            "input_dir": str(real),
            "models": [member],
            "output": {"submission": str(tmp_path / "s.csv"), "progress": False},
        }
    )
    ensemble = birdinfer.Ensemble(config)
    outcome = birdinfer.run(config, ensemble)
    minute = next(f for f in outcome.files if Path(f.path).name == "1min.wav")
    assert len(minute.row_ids) == 12
    # 12 windows of the model's length for the minute, 9 for the 44.6 s recording.
    assert ensemble.timer.member_windows[0] == 21
    assert outcome.stage_seconds[f"model sed{seconds:g}:sed.onnx"] > 0


@pytest.mark.parametrize("suffix", [".onnx", ".xml"])
def test_waveform_model_with_torchaudio_front_end_matches_torch(waveform, folder, tmp_path, suffix):
    module, result = waveform
    path = result.onnx_path.with_suffix(suffix)
    ours = rows_of(run_members(folder, tmp_path, [str(path)]))
    reference = waveform_reference(module, folder)
    assert max_diff(ours, reference, f"waveform {suffix}, {folder.name}") <= TOLERANCE


def test_waveform_export_keeps_the_stft_in_both_files(waveform):
    """The STFT stays an op of its own: the dynamo exporter writes ONNX's STFT, and the IR is
    converted straight from torch (OpenVINO's ONNX frontend takes no STFT with a dynamic
    batch), with an STFT op of OpenVINO's."""
    import onnx
    import openvino as ov

    _, result = waveform
    assert result.card.input_shape == (1, 160000) and result.card.waveform
    assert "STFT" in {n.op_type for n in onnx.load(str(result.onnx_path)).graph.node}
    model = ov.Core().read_model(str(result.openvino_path))
    assert "STFT" in {op.get_type_name() for op in model.get_ops()}
    assert result.onnx_max_abs_diff <= TOLERANCE and result.openvino_max_abs_diff <= TOLERANCE
    print(
        f"waveform export parity: ONNX {result.onnx_max_abs_diff:.2e}, "
        f"OpenVINO {result.openvino_max_abs_diff:.2e}"
    )


def test_perch_like_member_maps_its_labels_and_writes_its_embedding(perch, gem, folder, tmp_path):
    module, result, mapping = perch
    gem_module, gem_path = gem
    table = tmp_path / "windows.parquet"
    members = [
        str(gem_path),
        {"path": str(result.onnx_path), "mapping": str(mapping), "embedding": "embedding"},
    ]
    outcome = run_members(folder, tmp_path, members, output={"windows": str(table)})
    scores, embeddings = perch_reference(module, folder)
    ids = [i for f in outcome.files for i in f.row_ids]
    ours = pd.DataFrame(
        np.concatenate([f.member_scores[1] for f in outcome.files]), index=ids, columns=CODES
    )
    covered = [CODES[j] for j in COVERED]
    assert max_diff(ours, scores, f"Perch-like, mapped, {folder.name}", covered) <= TOLERANCE
    # The columns it does not cover are the CNN's alone; the report names them.
    cnn = gem_reference(gem_module, folder)
    bare = [c for c in CODES if c not in covered]
    assert max_diff(rows_of(outcome), cnn, "columns the Perch-like leaves", bare) <= TOLERANCE
    report = json.loads(outcome.report_path.read_text())
    assert report["models"][1]["columns_not_covered"] == bare
    assert report["models"][1]["input"] == "waveform"
    written = read_windows_table(table).set_index("row_id")
    vectors = np.stack(written.loc[embeddings.index, "embedding:perch_like"].to_list())
    diff = float(np.abs(vectors - embeddings.to_numpy()).max())
    print(f"parity Perch-like embedding, {folder.name}: max abs diff vs torch {diff:.2e}")
    assert diff <= TOLERANCE and float(embeddings.to_numpy().std(axis=0).max()) > 0.01


# --- all of them in one ensemble ------------------------------------------------------------------


def test_a_mixed_ensemble_gives_a_valid_submission_matching_torch(
    gem, sed, waveform, perch, folder, tmp_path
):
    """A 5 s CNN, a sliding SED model, a waveform model and a mapped Perch-like model: one
    decode, each front end once, the waveform members fed from the decode; the weighted mean
    per column over the members that cover it equals the torch modules' own."""
    (gem_module, gem_path), (sed_module, sed_result, seconds) = gem, sed
    (wave_module, wave_result), (perch_module, perch_result, mapping) = waveform, perch
    weights = [1.0, 2.0, 1.5, 0.5]
    members = [
        {"path": str(gem_path), "weight": weights[0]},
        {
            "path": str(sed_result.openvino_path),
            "weight": weights[1],
            "geometry": "sliding",
            "output": "framewise",
        },
        {"path": str(wave_result.onnx_path), "weight": weights[2]},
        {"path": str(perch_result.onnx_path), "weight": weights[3], "mapping": str(mapping)},
    ]
    outcome = run_members(folder, tmp_path, members)
    references = [
        gem_reference(gem_module, folder),
        sed_reference(sed_module, folder, seconds),
        waveform_reference(wave_module, folder),
        perch_reference(perch_module, folder)[0],
    ]
    index = references[0].index
    covers = [np.ones(len(CODES), bool)] * 3 + [np.isin(np.arange(len(CODES)), COVERED)]
    expected = covered_mean([r.loc[index].to_numpy() for r in references], weights, covers)
    reference = pd.DataFrame(expected, index=index, columns=CODES)
    label = f"mixed ensemble ({seconds:g} s SED), {folder.name}"
    assert max_diff(rows_of(outcome), reference, label) <= TOLERANCE
    check = validate_submission(outcome.submission, sample_columns=CODES)
    assert check.errors == [], check.errors
    report = json.loads(outcome.report_path.read_text())
    assert [m["geometry"] for m in report["models"]] == ["centred", "sliding", "centred", "centred"]
    inputs = [m["input"] for m in report["models"]]
    assert inputs == ["features", "features", "waveform", "waveform"]
    # Every member's own model time is on the stage table, for the time guard's costs.
    for m in report["models"]:
        assert outcome.stage_seconds[f"model {m['arch']}:{Path(m['path']).name}"] > 0


def test_a_mixed_ensemble_rank_blends_and_runs_under_the_time_guard(
    gem, sed, waveform, perch, synthetic, tmp_path
):
    (_, gem_path), (_, sed_result, _) = gem, sed
    (_, wave_result), (_, perch_result, mapping) = waveform, perch
    members = [
        str(gem_path),
        {"path": str(sed_result.onnx_path), "geometry": "sliding", "output": "framewise"},
        str(wave_result.openvino_path),
        {"path": str(perch_result.onnx_path), "mapping": str(mapping), "weight": 0.5},
    ]
    outcome = run_members(
        synthetic,
        tmp_path,
        members,
        inference={"combine": "rank_mean"},
        budget={"enabled": True, "minutes": 60, "calibration_files": 1},
    )
    check = validate_submission(outcome.submission, sample_columns=CODES)
    assert check.errors == []
    scores = outcome.submission[CODES].to_numpy()
    assert scores.min() > 0 and scores.max() <= 1  # percentile ranks in (0, 1]
    report = json.loads(outcome.report_path.read_text())
    assert report["time_guard"]["decisions"][0]["action"] == "plan"
    assert all(sorted(f.member_scores) == [0, 1, 2, 3] for f in outcome.files)


def test_a_foundation_model_file_without_a_card_gets_one_with_card_set(
    perch, gem, synthetic, tmp_path
):
    """Perch v2's own ONNX carries no card: `card set --waveform` attaches one, naming the label
    output and the embedding, and the file then scores exactly as the exported one."""
    import onnx

    from birdinfer.cli import main
    from birdinfer.models.card import CARD_KEY

    _, result, mapping = perch
    _, gem_path = gem
    proto = onnx.load(str(result.onnx_path))
    kept = [p for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    bare = tmp_path / "perch_v2_like.onnx"
    onnx.save(proto, str(bare))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(PERCH_LABELS) + "\n")
    flags = ["--classes", str(labels), "--waveform", "--graph-output", "label"]
    assert main(["card", "set", str(bare), *flags, "--graph-output", "embedding:embedding"]) == 0
    card = (
        birdinfer.Ensemble(
            from_dict({"models": [str(gem_path), {"path": str(bare), "mapping": str(mapping)}]})
        )
        .members[1]
        .backend.card
    )
    assert card.waveform and card.input_shape == (160000,) and card.version == 3
    assert [(o.name, o.holds, o.layout) for o in card.outputs] == [
        ("label", "logits", "clipwise"),
        ("embedding", "embedding", "clipwise"),
    ]
    member = {"mapping": str(mapping), "embedding": "embedding"}
    table = {"output": {"windows": str(tmp_path / "w.parquet")}}
    ours = run_members(synthetic, tmp_path, [str(gem_path), {"path": str(bare), **member}], **table)
    exported = run_members(
        synthetic, tmp_path, [str(gem_path), {"path": str(result.onnx_path), **member}], **table
    )
    pd.testing.assert_frame_equal(ours.submission, exported.submission)


def test_an_embedding_is_never_scored_and_must_be_marked_as_one(perch, gem, synthetic):
    from birdinfer.errors import ModelError

    _, result, mapping = perch
    _, gem_path = gem
    path = str(result.onnx_path)

    def ensemble(member):
        models = [str(gem_path), {"path": path, "mapping": str(mapping), **member}]
        return birdinfer.Ensemble(from_dict({"input_dir": str(synthetic), "models": models}))

    with pytest.raises(ModelError, match="output 'embedding' holds an embedding, not class"):
        ensemble({"output": "embedding"})
    windows = {"windows": "w.parquet"}
    with pytest.raises(ModelError, match=r"embedding 'label': its card marks \['embedding'\]"):
        birdinfer.Ensemble(
            from_dict(
                {
                    "models": [
                        str(gem_path),
                        {"path": path, "mapping": str(mapping), "embedding": "label"},
                    ],
                    "output": windows,
                }
            )
        )
    assert ensemble({}).members[1].output.name == "label"


def test_tta_shifts_apply_to_centred_members_not_to_sliding_ones(gem, sed, synthetic, tmp_path):
    (_, gem_path), (module, result, seconds) = gem, sed
    members = [
        str(gem_path),
        {"path": str(result.onnx_path), "geometry": "sliding", "output": "framewise"},
    ]
    tta = {"audio": {"tta_shifts": [-1.0, 0.0, 1.0]}}
    shifted = run_members(synthetic, tmp_path, members, **tta)
    plain = run_members(synthetic, tmp_path, members)
    ids = [i for f in shifted.files for i in f.row_ids]
    sliding = pd.DataFrame(
        np.concatenate([f.member_scores[1] for f in shifted.files]), index=ids, columns=CODES
    )
    reference = sed_reference(module, synthetic, seconds)
    assert max_diff(sliding, reference, f"SED {seconds:g} s sliding beside TTA") <= TOLERANCE
    centred = [np.concatenate([f.member_scores[0] for f in r.files]) for r in (shifted, plain)]
    assert np.abs(centred[0] - centred[1]).max() > 1e-3  # the CNN's views did move
