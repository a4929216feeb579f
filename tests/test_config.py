import json
import re
import warnings
from pathlib import Path

import pytest
import yaml

import birdinfer
from birdinfer.cli.infer import infer_overrides
from birdinfer.cli.main import build_parser as _parser
from birdinfer.config import (
    LEGACY,
    Legacy,
    apply_legacy,
    bundled_config_dir,
    from_dict,
    load_config,
    overdue,
    parse_override,
    to_dict,
)
from birdinfer.errors import ConfigError
from birdinfer.version import __version__

EDITIONS = ["birdclef2023", "birdclef2024", "birdclef2025", "birdclef2026"]


@pytest.mark.parametrize("name", ["default", *EDITIONS])
def test_bundled_configs_load(name):
    config = load_config(name)
    assert config.audio.sample_rate == 32000


@pytest.mark.parametrize("name", EDITIONS)
def test_edition_configs_point_at_kaggle_and_carry_a_mel_preset(name):
    config = load_config(name)
    year = name[-4:]
    assert config.input_dir == f"/kaggle/input/birdclef-{year}/test_soundscapes"
    assert config.output.submission == "/kaggle/working/submission.csv"
    assert config.output.sample_submission.endswith(f"birdclef-{year}/sample_submission.csv")
    assert config.mel is not None and config.mel.n_mels == 128
    assert config.competition.metric == ("padded_cmap" if year == "2023" else "macro_roc_auc")
    assert config.competition.budget_minutes == (120 if year in ("2023", "2024") else 90)


def test_every_yaml_in_configs_is_valid():
    names = sorted(p.stem for p in bundled_config_dir().glob("*.yaml"))
    assert set(names) >= {"default", *EDITIONS}
    for name in names:
        load_config(name)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"'mel\.n_ftt'"):
        from_dict({"mel": {"n_ftt": 1024}})


def test_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match="'inptu_dir'"):
        from_dict({"inptu_dir": "x"})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"'inference\.batch_size'.*expected int"):
        from_dict({"inference": {"batch_size": "sixteen"}})


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError, match=r"'inference\.workers'"):
        from_dict({"inference": {"workers": True}})


@pytest.mark.parametrize(
    "data, key",
    [
        ({"mel": {"fmax": 40000}}, "mel.fmax"),  # above the sample rate; above Nyquist warns
        ({"mel": {"hop_length": 4096}}, "mel.hop_length"),
        ({"mel": {"fmin": 500, "fmax": 400}}, "mel.fmin"),
        ({"inference": {"batch_size": 0}}, "inference.batch_size"),
        ({"audio": {"window_seconds": -5}}, "audio.window_seconds"),
        ({"inference": {"activation": "relu"}}, "inference.activation"),
        ({"mel": {"normalization": "zscore"}}, "mel.normalization[0].step"),
        ({"models": []}, "models"),
        ({"models": [{"path": "m.onnx", "geometry": "overlap"}]}, "models[0].geometry"),
        ({"models": [{"path": "m.onnx", "mapping": ""}]}, "models.mapping"),
        # an embedding goes into the per-window table, which must then be parquet
        ({"models": [{"path": "m.onnx", "embedding": "emb"}]}, "models.embedding"),
        (
            {"models": [{"path": "m.onnx", "embedding": "emb"}], "output": {"windows": "w.csv"}},
            "models.embedding",
        ),
    ],
)
def test_impossible_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        from_dict(data)


def test_models_accept_plain_paths_and_weights():
    config = from_dict({"models": ["a.onnx", {"path": "b.xml", "weight": 2}]})
    assert [(m.path, m.weight) for m in config.models] == [("a.onnx", 1.0), ("b.xml", 2.0)]


def test_overrides_win_over_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("input_dir: from_file\ninference:\n  workers: 1\n  batch_size: 8\n")
    config = load_config(path, {"inference.workers": 2, "input_dir": "from_flag"})
    assert (config.input_dir, config.inference.workers, config.inference.batch_size) == (
        "from_flag",
        2,
        8,
    )


def test_command_line_flags_become_overrides(tmp_path):
    args = _parser().parse_args(
        [
            "infer",
            "--input",
            "in",
            "--model",
            "m.onnx",
            "--workers",
            "3",
            "--threads",
            "1",
            "--batch-size",
            "4",
            "--output",
            "o.csv",
            "--set",
            "mel.fmin=40",
        ]
    )
    config = load_config("default", infer_overrides(args))
    assert config.input_dir == "in"
    assert config.models[0].path == "m.onnx"
    assert (config.inference.workers, config.inference.threads, config.inference.batch_size) == (
        3,
        1,
        4,
    )
    assert config.output.submission == "o.csv"
    assert config.mel.fmin == 40.0
    assert config.demo is None  # a real input folder turns the demo off


def test_parse_override_reads_yaml_values():
    assert parse_override("inference.workers=4") == ("inference.workers", 4)
    assert parse_override("mel=null") == ("mel", None)
    with pytest.raises(ConfigError):
        parse_override("no-equals-sign")


def test_not_yaml_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("mel: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="no bundled config"):
        load_config("birdclef1999")
    with pytest.raises(ConfigError, match="not found"):
        load_config(Path("nowhere/at/all.yaml"))


def test_yaml_tags_that_build_python_objects_are_refused(tmp_path):
    config = tmp_path / "evil.yaml"
    config.write_text("input_dir: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises((ConfigError, yaml.YAMLError)):
        load_config(str(config))


# --- settings by concern: keys that moved keep working, with a warning naming the new key -------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("duplicate_stems", "path"),
        ("placeholder_rows_for_skipped", True),
        ("skipped_file_seconds", 60.0),
        ("empty_input_fallback", "/kaggle/input/x/unlabeled_soundscapes"),
        ("empty_input_fallback_files", 3),
    ],
)
def test_an_old_output_key_moves_to_input_with_a_warning(key, value):
    with pytest.warns(FutureWarning, match=rf"'output\.{key}' is deprecated: use 'input\.{key}'"):
        config = from_dict({"output": {key: value}})
    assert getattr(config.input, key) == value


def test_the_old_and_the_new_key_together_are_refused():
    with (
        pytest.warns(FutureWarning),
        pytest.raises(ConfigError, match=r"keep 'input\.duplicate_stems'"),
    ):
        from_dict({"output": {"duplicate_stems": "path"}, "input": {"duplicate_stems": "skip"}})


def test_new_keys_load_without_a_warning(recwarn):
    config = from_dict({"input": {"duplicate_stems": "path"}})
    assert config.input.duplicate_stems == "path"
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_executor_kind_threads_is_the_deprecated_name_of_tasks():
    with pytest.warns(FutureWarning, match=r"'executor\.kind: threads' is deprecated"):
        config = from_dict({"executor": {"kind": "threads"}, "inference": {"workers": 3}})
    assert config.executor.kind == "tasks"
    # inference.workers keeps its one meaning on every executor: each engine's feature workers
    assert config.inference.workers == 3 and config.executor.workers is None


def test_workers_flag_means_feature_workers_on_every_executor():
    for kind in ("engine", "tasks", "processes", "dask"):
        args = _parser().parse_args(["infer", "--executor", kind, "--workers", "3"])
        overrides = infer_overrides(args)
        assert overrides["inference.workers"] == 3 and "executor.workers" not in overrides
    args = _parser().parse_args(["infer", "--executor", "tasks", "--executor-workers", "2"])
    assert infer_overrides(args)["executor.workers"] == 2


def test_the_budget_is_resolved_in_one_place():
    assert from_dict({}).budget_minutes == 90.0  # the competition's
    assert from_dict({"competition": {"budget_minutes": 120}}).budget_minutes == 120
    assert from_dict({"budget": {"minutes": 30}}).budget_minutes == 30  # the override wins


@pytest.mark.parametrize("name", EDITIONS)
def test_each_edition_config_holds_its_hidden_test_set(name):
    competition = load_config(name).competition
    files, seconds = {
        "2023": (200, 600),
        "2024": (1100, 240),
        "2025": (700, 60),
        "2026": (600, 60),
    }[name[-4:]]
    assert (competition.test_files, competition.file_seconds) == (files, seconds)
    # the skipped-file placeholder length is the edition's file length
    assert load_config(name).input.skipped_file_seconds == seconds


def test_a_preset_on_the_command_line_replaces_the_editions_mel_block():
    """`--config birdclef2026 --set mel.preset=birdclef2026_2nd` took the edition's 2048/512/128
    and scale80 over the preset's; now the preset replaces the block and --set keys win."""
    config = load_config("birdclef2026", {"mel.preset": "birdclef2026_2nd"})
    assert (config.mel.n_fft, config.mel.hop_length, config.mel.n_mels) == (4096, 1252, 224)
    assert [s.step for s in config.mel.normalization] == ["minmax"]
    assert config.image.channels == 3
    tuned = load_config("birdclef2026", {"mel.preset": "birdclef2026_2nd", "mel.n_mels": 200})
    assert (tuned.mel.n_fft, tuned.mel.n_mels) == (4096, 200)


def test_solution_settings_default_to_todays_behaviour_and_name_bad_values():
    config = from_dict({})
    assert (config.audio.normalize, config.audio.last_window) == ("none", "pad_end")
    assert config.postprocess.file_scale_top_k == 0
    assert (config.inference.rank_ties, config.inference.rank_clip) == ("first", 0.0)
    for data, key in [
        ({"audio": {"last_window": "pad_left"}}, "audio.last_window"),
        ({"mel": {"top_db_scope": "batch"}}, "mel.top_db_scope"),
        ({"postprocess": {"file_scale_top_k": -1}}, "postprocess.file_scale_top_k"),
        ({"inference": {"rank_clip": 0.5}}, "inference.rank_clip"),
        ({"models": [{"path": "m.onnx", "taxon_weights": ["Aves"]}]}, "models"),
        ({"models": [{"path": "m.onnx", "taxon_weights": {"Aves": -1}}]}, "taxon_weights"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(key)):
            from_dict(data)


def test_taxon_weights_read_as_a_mapping_and_round_trip():
    config = from_dict({"models": [{"path": "m.onnx", "taxon_weights": {"Aves": 0.25}}]})
    assert config.models[0].taxon_weights == (("Aves", 0.25),)
    assert from_dict(to_dict(config)) == config


def test_a_config_extends_another_and_changes_only_what_it_names(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: birdclef2025\nbudget:\n  minutes: 30\nmodels: [a.onnx, b.onnx]\n")
    base, config = load_config("birdclef2025"), load_config(mine)
    assert config.budget.minutes == 30 and config.budget_minutes == 30
    assert config.budget.reserve_minutes == base.budget.reserve_minutes  # merged, not replaced
    assert [m.path for m in config.models] == ["a.onnx", "b.onnx"]  # a list replaces
    assert config.mel == base.mel and config.competition == base.competition
    child = tmp_path / "child.yaml"  # a chain, with a path relative to the file
    child.write_text("extends: mine.yaml\nmel:\n  preset: birdclef2024_3rd\n")
    chained = load_config(child)
    assert chained.budget.minutes == 30
    preset = load_config(None, {"mel": {"preset": "birdclef2024_3rd"}})
    assert chained.mel == preset.mel  # a preset replaces the base's mel block whole


def test_an_extends_loop_or_a_missing_base_is_named(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="'extends': a loop"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: birdclef2099\n")
    with pytest.raises(ConfigError, match="no bundled config of that name"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("birdclef2023", None),
        ("birdclef2024", "unlabeled_soundscapes"),
        ("birdclef2025", "train_soundscapes"),
        ("birdclef2026", "train_soundscapes"),
    ],
)
def test_each_edition_names_the_save_run_fallback_its_data_ships(name, folder):
    fallback = load_config(name).input.empty_input_fallback
    assert (Path(fallback).name if fallback else None) == folder


# --- the edition configs: a shared base plus a short delta each ----------------------------------

LOADED_BEFORE = Path(__file__).parent / "data" / "configs" / "loaded_before_the_split.json"


@pytest.mark.parametrize("name", ["default", *EDITIONS])
def test_each_bundled_config_loads_to_what_it_loaded_to_before_the_split(name, recwarn):
    """The snapshot was written from main's 46-line edition files before they became
    birdclef.yaml plus a delta: every field of every section, tuples as lists."""
    expected = json.loads(LOADED_BEFORE.read_text(encoding="utf-8"))[name]
    assert to_dict(load_config(name)) == expected
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("name", EDITIONS)
def test_each_edition_is_the_shared_base_plus_a_short_delta(name):
    text = (bundled_config_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["extends"] == "birdclef"
    assert len(text.splitlines()) <= 25
    assert "sample_rate" not in data.get("mel", {})  # audio's is the one rate


# --- one sample rate ------------------------------------------------------------------------------


def test_the_mel_section_takes_the_audio_sample_rate(recwarn):
    config = from_dict({"audio": {"sample_rate": 48000}, "mel": {"fmax": 16000}})
    assert (config.audio.sample_rate, config.mel.sample_rate) == (48000, 48000)
    assert from_dict({"mel": {}}).mel.sample_rate == 32000  # audio's default
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_mel_sample_rate_agreeing_with_audio_loads_as_before_with_a_warning():
    with pytest.warns(FutureWarning, match=r"'mel\.sample_rate' is deprecated"):
        old = from_dict({"audio": {"sample_rate": 16000}, "mel": {"sample_rate": 16000}})
    assert old == from_dict({"audio": {"sample_rate": 16000}, "mel": {}})


def test_mel_sample_rate_disagreeing_with_audio_is_refused_naming_both():
    with (
        pytest.warns(FutureWarning),
        pytest.raises(ConfigError, match=r"'mel\.sample_rate' is 48000 and 'audio\.sample_rate'"),
    ):
        from_dict({"audio": {"sample_rate": 32000}, "mel": {"sample_rate": 48000}})


def test_an_error_names_the_key_and_the_file_it_was_loaded_from(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: birdclef2025\nmel:\n  n_ftt: 1024\n")
    with pytest.raises(ConfigError, match=r"'mel\.n_ftt'.*mine\.yaml"):
        load_config(path)


# --- the legacy table -----------------------------------------------------------------------------

# One example per table entry: config data with the old key or value (`key: value` entries),
# and what it must load to; a public name's, an expression that must hold.
CONFIG_EXAMPLES = {
    "output.empty_input_fallback": (
        {"output": {"empty_input_fallback": "/x"}},
        lambda c: c.input.empty_input_fallback == "/x",
    ),
    "output.empty_input_fallback_files": (
        {"output": {"empty_input_fallback_files": 3}},
        lambda c: c.input.empty_input_fallback_files == 3,
    ),
    "output.duplicate_stems": (
        {"output": {"duplicate_stems": "path"}},
        lambda c: c.input.duplicate_stems == "path",
    ),
    "output.placeholder_rows_for_skipped": (
        {"output": {"placeholder_rows_for_skipped": True}},
        lambda c: c.input.placeholder_rows_for_skipped is True,
    ),
    "output.skipped_file_seconds": (
        {"output": {"skipped_file_seconds": 60}},
        lambda c: c.input.skipped_file_seconds == 60.0,
    ),
    "executor.kind: threads": (
        {"executor": {"kind": "threads"}, "inference": {"workers": 3}},
        lambda c: (c.executor.kind, c.executor.workers, c.inference.workers) == ("tasks", None, 3),
    ),
    "mel.sample_rate": (
        {"mel": {"sample_rate": 48000, "fmax": 16000}},
        lambda c: (c.audio.sample_rate, c.mel.sample_rate) == (48000, 48000),
    ),
}
NAME_EXAMPLES = {"birdinfer.Pipeline": lambda: birdinfer.Pipeline is birdinfer.Ensemble}


def test_every_legacy_entry_has_an_example_here():
    # Flag entries are exercised through the parser, in tests/test_cli.py.
    configs = {entry.old for entry in LEGACY if entry.kind != "flag"}
    assert configs == set(CONFIG_EXAMPLES) | set(NAME_EXAMPLES)


def test_no_legacy_entry_outlives_the_release_that_removes_it():
    """Fails on the release named in an entry: remove the entry (and its example) then."""
    assert overdue(__version__) == []


def test_overdue_finds_the_entries_of_a_release():
    assert overdue("0.2.0") == [e for e in LEGACY if e.removed_in == "0.2.0"] != []
    early, late = (Legacy("a.b", "c.d", "test", v) for v in ("0.9.0", "0.10.1"))
    assert overdue("0.10.0", table=(early, late)) == [early]  # by number, not as text


def _warned_once(caught: list, entry: Legacy) -> None:
    warned = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert len(warned) == 1, warned
    assert all(part in warned[0] for part in (entry.old, entry.new, entry.removed_in))


@pytest.mark.parametrize(
    "entry", [e for e in LEGACY if e.kind in ("key", "value")], ids=lambda e: e.old
)
def test_a_legacy_key_or_value_loads_and_warns_once_naming_the_new_one_and_the_release(entry):
    data, loaded = CONFIG_EXAMPLES[entry.old]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = from_dict(data)
    assert loaded(config)
    _warned_once(caught, entry)


@pytest.mark.parametrize("entry", [e for e in LEGACY if e.kind == "name"], ids=lambda e: e.old)
def test_a_legacy_name_resolves_and_warns_once_naming_the_new_name_and_the_release(entry):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert NAME_EXAMPLES[entry.old]()
    _warned_once(caught, entry)


def test_a_legacy_value_is_renamed_with_a_warning():
    """No entry renames a value yet: the mechanism, on a table of one."""
    entry = Legacy("executor.kind: old", "executor.kind: new", "a test", "9.0.0", kind="value")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = apply_legacy({"executor": {"kind": "old"}}, table=(entry,))
    assert data == {"executor": {"kind": "new"}}
    _warned_once(caught, entry)
    assert apply_legacy({"executor": {"kind": "other"}}, table=(entry,)) == {
        "executor": {"kind": "other"}
    }
