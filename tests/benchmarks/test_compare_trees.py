import pytest
from compare_trees import compare, markdown

from tests.helpers import REPO


@pytest.mark.slow  # four child interpreters
def test_two_trees_run_interleaved_and_each_child_imports_its_own_tree(
    tiny_onnx, soundscape_dir, tmp_path, capsys
):
    rows = compare({"a": REPO, "b": REPO}, soundscape_dir, [tiny_onnx], rounds=2, batch=4)
    assert [(r["model"], r["tree"]) for r in rows] == [(tiny_onnx.name, "a"), (tiny_onnx.name, "b")]
    assert all(len(r["runs"]) == 2 and r["whole_ms"] > r["in_process_ms"] > 0 for r in rows)
    printed = [line.split()[3] for line in capsys.readouterr().out.splitlines()]
    assert printed == ["a", "b", "b", "a"]  # the second round starts with the other tree
    assert markdown(rows).count(f"| {tiny_onnx.name} |") == 2


def test_a_child_that_imports_another_birdinfer_is_refused(tiny_onnx, soundscape_dir, tmp_path):
    with pytest.raises(SystemExit, match="failed|not"):
        compare({"x": tmp_path}, soundscape_dir, [tiny_onnx], rounds=1, batch=4)
