"""birdinfer: fast, honest CPU inference for BirdCLEF-style soundscapes.

import birdinfer
config = birdinfer.load_config("birdclef2025", {"models": ["model.onnx"]})
result = birdinfer.run(config)          # writes submission.csv and its run report
result.submission                       # the same rows as a pandas DataFrame
ensemble = birdinfer.Ensemble(config)   # models loaded once
birdinfer.predict_frame(ensemble, "soundscape_1.ogg")  # file, start/end seconds, class scores

card = birdinfer.make_card("my_sed", class_names, config.mel, 5.0, outputs=["clipwise:probabilities"])
birdinfer.export(module, card, "model.onnx")  # your nn.Module -> ONNX + OpenVINO (needs torch)
card = birdinfer.make_waveform_card("my_wave", class_names, 32000, 5.0)  # raw audio in

Beyond these, each subpackage names its public names in its `__init__` (`__all__`), from
`birdinfer.audio`, `birdinfer.frontend` and `birdinfer.models` up to `birdinfer.scorer`,
`birdinfer.runner` and the tools (`birdinfer.quantize`, `birdinfer.kaggle`, `birdinfer.demo`).
"""

import birdinfer.demo.builtin  # noqa: F401  (registers builtin:demo, the default config's model)
from birdinfer.config import Config, load_config, renamed_name
from birdinfer.errors import BirdinferError, ConfigError
from birdinfer.output import windows_frame, write_windows
from birdinfer.runner import RunResult, run
from birdinfer.scorer import Ensemble, predict_frame
from birdinfer.version import __version__

__all__ = [
    "BirdinferError",
    "Config",
    "ConfigError",
    "Ensemble",
    "RunResult",
    "__version__",
    "export",
    "load_config",
    "make_card",
    "make_waveform_card",
    "predict_frame",
    "run",
    "windows_frame",
    "write_windows",
]

# The export side is only imported when asked for, so that `import birdinfer` stays light on a
# machine that only runs inference (torch itself is imported by export's calls, never before).
_LAZY = {
    "export": "birdinfer.models.export",
    "make_card": "birdinfer.models.export",
    "make_waveform_card": "birdinfer.models.export",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    # Names of earlier releases: the legacy table's, with a warning naming the new name.
    new = renamed_name("birdinfer", name, stacklevel=3)
    if new is not None:
        return globals()[new]
    raise AttributeError(f"module 'birdinfer' has no attribute {name!r}")
