"""The wheelhouse says which Python it is for, and a mismatch is named before pip runs."""

import json
import runpy
import sys

from birdinfer.kaggle import KAGGLE_PYTHON
from birdinfer.kaggle.wheelhouse import TARGET_FILE, target_mismatch
from tests.helpers import REPO

settings_from = runpy.run_path(str(REPO / "scripts" / "build_wheelhouse.py"))["settings_from"]


def test_the_default_target_is_kaggles_python_312():
    assert KAGGLE_PYTHON == "3.12"
    assert settings_from([]).python_version == ("3.12",)
    assert settings_from(
        ["--python-version", "3.11", "--python-version", "3.12"]
    ).python_version == (
        "3.11",
        "3.12",
    )
    assert settings_from(["--native"]).python_version is None


def test_a_wheelhouse_for_another_python_is_named_with_the_rebuild_command(tmp_path):
    (tmp_path / TARGET_FILE).write_text(json.dumps({"python": ["3.11"]}))
    problem = target_mismatch(tmp_path, (3, 12))
    assert "wheels for CPython 3.11, and this is Python 3.12" in problem
    assert "build_wheelhouse.py --python-version 3.12" in problem
    assert target_mismatch(tmp_path, (3, 11)) is None
    (tmp_path / TARGET_FILE).unlink()  # an older folder without the file: pip decides
    assert target_mismatch(tmp_path, sys.version_info[:2]) is None
