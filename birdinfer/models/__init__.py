"""Models: a file's card, the runtimes behind one call, and the one home of model files.

open_backend("model.onnx", threads=2)(batch)      # raw scores, the card on `.card`
read_card("model.xml"); set_card(path, build_card(path, classes=[...], config="birdclef2025"))
resolve_model_path("builtin:demo"); files_sha256(*model_files(path))

Export (torch -> ONNX/OpenVINO) is `birdinfer.export`, imported only when asked for.
"""

from birdinfer.models.backends import Backend, open_backend
from birdinfer.models.card import (
    CARD_KEY,
    ModelCard,
    OutputSpec,
    card_from_metadata,
    contradictions,
)
from birdinfer.models.card_tool import build_card, check_frontend, set_card, show
from birdinfer.models.files import (
    BUILTIN_PREFIX,
    compile_openvino,
    files_sha256,
    model_files,
    onnxruntime_session,
    read_card,
    read_metadata,
    read_openvino,
    register_builtin,
    resolve_model_path,
    write_model_file,
)

__all__ = [
    "BUILTIN_PREFIX",
    "CARD_KEY",
    "Backend",
    "ModelCard",
    "OutputSpec",
    "build_card",
    "card_from_metadata",
    "check_frontend",
    "compile_openvino",
    "contradictions",
    "files_sha256",
    "model_files",
    "onnxruntime_session",
    "open_backend",
    "read_card",
    "read_metadata",
    "read_openvino",
    "register_builtin",
    "resolve_model_path",
    "set_card",
    "show",
    "write_model_file",
]
