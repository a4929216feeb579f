"""A variant is put in place as every model file is (birdinfer.models.files): whole, with its
card, the file's other metadata kept (a licence or provenance entry survives quantization), and
the mode of the file it replaces kept."""

import stat

import onnx

from birdinfer.models import CARD_KEY, open_backend
from birdinfer.quantize import variants as V


def _with_entry(source, path, key, value):
    proto = onnx.load(str(source))
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def _save_variant(tiny_onnx, staged, out):
    variant = V.file_variant(staged, "ort-int8")
    card = V.variant_card(open_backend(tiny_onnx).card, variant.kind, tiny_onnx)
    variant.save_to(card, out)
    return card


def test_an_onnx_variant_keeps_the_files_other_metadata(tiny_onnx, tmp_path):
    staged = _with_entry(tiny_onnx, tmp_path / "staged.onnx", "licence", "CC BY 4.0")
    out = tmp_path / "model.ort-int8.onnx"
    card = _save_variant(tiny_onnx, staged, out)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props == {"licence": "CC BY 4.0", CARD_KEY: card.to_json()}
    assert open_backend(out).card.extra["variant"] == "onnxruntime-int8-qdq"


def test_a_rewritten_variant_keeps_the_mode_of_the_file_it_replaces(tiny_onnx, tmp_path):
    out = tmp_path / "model.ort-int8.onnx"
    out.write_bytes(b"an older variant")
    out.chmod(0o640)
    _save_variant(tiny_onnx, tiny_onnx, out)
    assert oct(stat.S_IMODE(out.stat().st_mode)) == "0o640"
    assert open_backend(out).card.extra["variant"] == "onnxruntime-int8-qdq"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
