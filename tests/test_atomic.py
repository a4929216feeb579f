"""One atomic write (birdinfer.atomic) for every file birdinfer puts in place: a failed write
leaves the old file and nothing beside it, a symlink is followed only when asked, and no other
module renames a temporary file into place by hand."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from birdinfer.atomic import write_atomic
from tests.helpers import REPO

# Calls that put a temporary file in place; only birdinfer/atomic.py makes them.
RENAMES = {("os", "replace"), ("os", "rename"), ("shutil", "move")}


def renames_in(source: str) -> list[str]:
    """The `os.replace`-like calls in `source`, as `module.function`, and a temporary path's
    own `.replace`/`.rename` (`tmp.replace(path)`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, name = node.func.value, node.func.attr
            if not isinstance(owner, ast.Name):
                continue
            temporary = owner.id.startswith(("tmp", "temp")) and name in ("replace", "rename")
            if (owner.id, name) in RENAMES or temporary:
                found.append(f"{owner.id}.{name}")
    return found


def test_no_module_but_the_atomic_helper_renames_files_into_place():
    helper = REPO / "birdinfer" / "atomic.py"
    found = [
        f"{path.relative_to(REPO)}: {call}"
        for folder in ("birdinfer", "scripts")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != helper
        for call in renames_in(path.read_text(encoding="utf-8"))
    ]
    assert found == []
    assert renames_in(helper.read_text(encoding="utf-8")) == ["os.replace"]


def test_the_rename_check_sees_a_planted_hand_written_rename():
    planted = "import os\nos.replace(tmp, 'a')\ntmp.replace(path)\nframe.rename(columns=str)\n"
    assert renames_in(planted) == ["os.replace", "tmp.replace"]


def test_a_failed_write_leaves_the_old_file_and_nothing_beside_it(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")

    def half_then_fail(handle):
        handle.write("half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize("follow", [True, False])
def test_a_symlink_is_followed_only_when_asked(tmp_path, follow):
    target = tmp_path / "shared" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "model.onnx"
    link.symlink_to(target)
    written = write_atomic(link, lambda h: h.write(b"new"), binary=True, follow_symlinks=follow)
    assert link.read_bytes() == b"new"
    assert link.is_symlink() == follow
    assert target.read_bytes() == (b"new" if follow else b"old")
    assert written == (Path(os.path.realpath(target)) if follow else link)
