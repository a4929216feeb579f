"""The one home of model files: where a model is (a path or a `builtin:` name) and the files it
consists of, their hash, its card read and written, each format put in place whole, and runtime
sessions opened with the house settings. Nothing else in birdinfer opens a session or writes a
model file (tests/models/test_files.py checks the source)."""

from birdinfer.models.files.card_io import (
    card_path,
    onnx_with_card,
    read_card,
    read_metadata,
    write_onnx_card,
    write_openvino_card,
    write_tflite_card,
)
from birdinfer.models.files.locate import (
    BUILTIN_PREFIX,
    builtin_models,
    files_sha256,
    model_files,
    register_builtin,
    resolve_model_path,
)
from birdinfer.models.files.sessions import (
    compile_openvino,
    litert_interpreter,
    onnxruntime_session,
    openvino_config,
    read_openvino,
)
from birdinfer.models.files.write import (
    check_writable_target,
    replace_files,
    write_model_file,
    write_onnx,
    write_openvino,
)

__all__ = [
    "BUILTIN_PREFIX",
    "builtin_models",
    "card_path",
    "check_writable_target",
    "compile_openvino",
    "files_sha256",
    "litert_interpreter",
    "model_files",
    "onnx_with_card",
    "onnxruntime_session",
    "openvino_config",
    "read_card",
    "read_metadata",
    "read_openvino",
    "register_builtin",
    "replace_files",
    "resolve_model_path",
    "write_model_file",
    "write_onnx",
    "write_onnx_card",
    "write_openvino",
    "write_openvino_card",
    "write_tflite_card",
]
