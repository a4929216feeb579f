"""birdinfer: fast, honest CPU inference for BirdCLEF-style soundscapes.

import birdinfer
config = birdinfer.load_config("birdclef2025", {"models": ["model.onnx"]})
result = birdinfer.run(config)          # writes submission.csv and its run report
result.submission                       # the same rows as a pandas DataFrame
ensemble = birdinfer.Ensemble(config)   # models loaded once
birdinfer.predict_frame(ensemble, "soundscape_1.ogg")  # file, start/end seconds, class scores
"""

from birdinfer.config import Config, load_config  # noqa: E402
from birdinfer.errors import ConfigError
from birdinfer.inference.ensemble import (
    Ensemble,  # noqa: E402
    predict_frame,
)
from birdinfer.inference.run import RunResult, run  # noqa: E402
from birdinfer.output.windows_table import windows_frame, write_windows  # noqa: E402
from birdinfer.version import __version__  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "Ensemble",
    "RunResult",
    "__version__",
    "load_config",
    "predict_frame",
    "run",
    "windows_frame",
    "write_windows",
]
