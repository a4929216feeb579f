"""Model files put into place (`card set`, `export`, `quantize`): whole or not at all, with the
mode the file had, through symlinks, and with no temporary file left beside it even by a kill.

A model file is often shared or read-only on purpose, so replacing it keeps its mode (and owner,
where allowed); a symlink names the file to change, so the link's target is replaced and the
link kept (birdinfer.atomic does both). An ONNX file is one write; an OpenVINO IR is saved whole
in a private folder first, then its .bin and its .xml (which names the .bin) put in place in
that order, so a reader never finds an .xml without its weights.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from birdinfer.atomic import real_target, write_atomic
from birdinfer.errors import ModelError


def check_writable_target(path: str | Path) -> None:
    """Refuse a destination that cannot take a model file: a folder, or a missing parent."""
    target = real_target(path)
    if target.is_dir():
        raise ModelError(f"{path}: is a folder; name the model file to write")
    if not target.parent.is_dir():
        raise ModelError(f"{path}: its folder {target.parent} does not exist")


def write_model_file(path: str | Path, write: Callable) -> Path:
    """Call `write(handle)` on an unnamed file beside `path`'s target, then rename it into
    place. Returns the path written (a symlink's target)."""
    check_writable_target(path)
    try:
        return write_atomic(path, write, binary=True, follow_symlinks=True)
    except OSError as exc:  # a read-only folder, a full disk: nothing was replaced
        raise ModelError(f"{path}: cannot write it ({exc.strerror or exc})") from exc


def replace_files(pairs: Sequence[tuple[Path, Path]]) -> list[Path]:
    """Copy each (source, destination) into place, in order, each one whole (an IR: the .bin
    before the .xml that names it). A destination's file keeps its mode."""
    placed = []
    for source, destination in pairs:
        with open(source, "rb") as handle:
            placed.append(write_model_file(destination, lambda out, h=handle: _copy(h, out)))
    return placed


def write_onnx(proto, path: str | Path) -> Path:
    """An ONNX ModelProto (weights inside it) written to `path` whole."""
    data = proto.SerializeToString()
    return write_model_file(path, lambda handle: handle.write(data))


def write_openvino(
    model, xml_path: str | Path, compress_to_fp16: bool = False, keep_same_bin: bool = False
) -> Path:
    """An OpenVINO model saved as an IR at `xml_path` (and the .bin beside it), each file whole,
    the .bin first. `compress_to_fp16` stays False unless asked: OpenVINO's default would
    silently halve the weights. `keep_same_bin`: a .bin already holding the same bytes is left
    alone (`card set` rewrites only the .xml). Returns the .xml's path written."""
    import openvino as ov

    xml_path = Path(xml_path)
    check_writable_target(xml_path)
    check_writable_target(xml_path.with_suffix(".bin"))
    with tempfile.TemporaryDirectory(prefix="birdinfer-ir-") as tmp:
        tmp_xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        pairs = [(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin")), (tmp_xml, xml_path)]
        if keep_same_bin and _same_bytes(*pairs[0]):
            pairs = pairs[1:]
        return replace_files(pairs)[-1]


def _same_bytes(a: Path, b: Path) -> bool:
    if not b.is_file() or a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as one, open(b, "rb") as two:
        while True:
            block = one.read(1 << 20)
            if block != two.read(1 << 20):
                return False
            if not block:
                return True


def _copy(source, out) -> None:
    shutil.copyfileobj(source, out, 1 << 20)
