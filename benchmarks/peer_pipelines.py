"""The pipelines `bench.peers` compares, run one per child process as a plain script.

This file imports nothing of birdinfer at module level, so the peers' processes pay only for
their own imports; the birdinfer pipelines import the package before their clock starts, as the
others import librosa, torch or OpenVINO. Each pipeline returns (the time its clock started,
windows scored); the child prints the in-process seconds and the windows as one JSON line.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

WINDOW_SAMPLES = 160_000  # 5 s at 32 kHz


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".ogg")


def _windows_of(audio):
    """A file's audio as (n, 160000) windows, the last one zero-padded."""
    import numpy as np

    n = max(1, math.ceil(len(audio) / WINDOW_SAMPLES))
    return np.pad(audio, (0, n * WINDOW_SAMPLES - len(audio))).reshape(n, WINDOW_SAMPLES)


def _librosa_log_mels(path: str, mel: dict) -> Any:
    """What a librosa training pipeline feeds its model: (n, 1, n_mels, frames) float32, each
    window's dB taken against its own max and standardised on its own."""
    import librosa
    import numpy as np

    audio, _ = librosa.load(path, sr=mel["sample_rate"])
    chunks = _windows_of(audio)
    power = librosa.feature.melspectrogram(
        y=chunks,
        sr=mel["sample_rate"],
        n_fft=mel["n_fft"],
        hop_length=mel["hop_length"],
        n_mels=mel["n_mels"],
        fmin=mel["fmin"],
        fmax=mel["fmax"],
    )
    out = []
    for window in power:
        db = librosa.power_to_db(window, ref=np.max, top_db=80)
        out.append((db - db.mean()) / (db.std() + 1e-6))
    return np.stack(out)[:, None].astype(np.float32)


def naive(job: dict[str, Any]) -> tuple[float, int]:
    import librosa  # noqa: F401 - imported before the clock starts, as a notebook's first cell
    import numpy as np
    import timm
    import torch

    start = time.perf_counter()
    audio_dir, mel, cores = Path(job["audio_dir"]), job["mel"], job["cores"]
    model = timm.create_model(
        job["arch"], pretrained=False, num_classes=job["classes"], in_chans=1
    ).eval()
    torch.set_num_threads(cores)
    windows = 0
    for path in _audio_files(audio_dir):
        features = _librosa_log_mels(str(path), mel)
        with torch.no_grad():
            torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(features))))
        windows += len(features)
    return start, windows


def recipe_2024(job: dict[str, Any]) -> tuple[float, int]:
    import librosa  # noqa: F401 - the workers import it too
    import openvino as ov
    from joblib import Parallel, delayed

    start = time.perf_counter()
    audio_dir, mel, cores = Path(job["audio_dir"]), job["mel"], job["cores"]
    files = [str(p) for p in _audio_files(audio_dir)]
    # Phase 1: every file's log-mels, one worker process per core.
    features = Parallel(n_jobs=cores, backend="loky")(
        delayed(_librosa_log_mels)(path, mel) for path in files
    )
    # Phase 2: one OpenVINO call per file (its 12 windows as one batch), f32 as birdinfer's.
    compiled = ov.Core().compile_model(
        job["models"]["ov-fp32"],
        "CPU",
        {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": cores},
    )
    request = compiled.create_infer_request()
    windows = 0
    for x in features:
        request.infer({0: x})
        windows += len(x)
    return start, windows


def birdinfer_run(model_key: str):
    def pipeline(job: dict[str, Any]) -> tuple[float, int]:
        import tempfile

        import openvino  # noqa: F401 - before the clock, as the recipe imports it

        from birdinfer.config import from_dict
        from birdinfer.runner.steps import run

        start = time.perf_counter()
        audio_dir, models, batch = job["audio_dir"], job["models"], job["batch_size"]
        with tempfile.TemporaryDirectory() as out:
            config = from_dict(
                {
                    "input_dir": str(audio_dir),
                    "models": [str(models[model_key])],
                    # Random-weight reference model: speed only (see bench.benchmark.run_config).
                    "inference": {"batch_size": batch, "allow_rejected_models": True},
                    "output": {"submission": f"{out}/submission.csv", "progress": False},
                }
            )
            windows = run(config).windows
        return start, windows

    return pipeline


RUNNERS = {
    "naive": naive,
    "recipe-2024": recipe_2024,
    "birdinfer-ov-fp32": birdinfer_run("ov-fp32"),
    "birdinfer-ov-int8": birdinfer_run("ov-int8"),
}


def main(argv: list[str]) -> None:
    name, job = argv[0], json.loads(argv[1])
    start, windows = RUNNERS[name](job)
    elapsed = time.perf_counter() - start
    print(json.dumps({"in_process_seconds": elapsed, "windows": windows}))


if __name__ == "__main__":
    main(sys.argv[1:])
