"""The lab timing-budget benchmark: one reference model in every runtime and precision.

Where the time goes, and what fits each competition's budget. Everything is measured side by side in
one run on the same files: each stage alone at full cores, then end to end per runtime / precision,
a naive notebook baseline, a 3-member ensemble on one front end, and peak memory for two folder
sizes (each in a fresh process). Results are projected onto each BirdCLEF edition's hidden test set
and CPU budget. `birdinfer bench` measures the same stages for a user's own config; this adds the
reference model's variants (needs torch and the quantizer), the baseline and the memory runs.

    python benchmarks/benchmark.py [--files 40] [--report-dir reports/bench] [--no-baseline]
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from birdinfer.atomic import write_json_atomic
from birdinfer.audio import WindowReader
from birdinfer.budget.measure import (
    Measurement,
    best_of,
    configuration_row,
    decode_alone,
    end_to_end,
    ensemble_row,
    mel_alone,
    model_alone,
    summary,
    synthetic_folder,
)
from birdinfer.config import AudioConfig, Config, from_dict
from birdinfer.frontend import LogMel
from birdinfer.models.backends import open_backend
from birdinfer.models.host import cpu_summary
from birdinfer.scorer.threads import available_cores

log = logging.getLogger(__name__)

REFERENCE_CLASSES = 234  # BirdCLEF+ 2026
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BenchSettings:
    files: int = 40
    seconds: float = 60.0
    batch_size: int = 16
    threads: int | None = None  # None: every available core
    report_dir: Path = Path("reports/bench")
    input_dir: Path | None = None  # a folder of recordings instead of synthetic OGG files
    kaggle_scale: float = 1.0  # Kaggle's 4 vCPU (2 cores x 2 hyperthreads) vs the cores here
    reserve_minutes: float = 5.0  # kept out of each budget for start-up and writing
    rss_files: tuple[int, int] = (100, 400)
    baseline: bool = True
    # Each timing is the best of this many repeats: single runs of a few seconds on a shared
    # machine vary by +-10%, which is as large as the differences being measured.
    repeats: int = 3


# --- inputs ---------------------------------------------------------------------------------


def reference_model(folder: Path) -> Path:
    """efficientnet_b0, 1 channel, 234 classes, 128 x 313 (random weights: speed only)."""
    path = folder / "efficientnet_b0_234.onnx"
    if path.is_file():
        return path
    from birdinfer.demo import DEMO_MEL
    from birdinfer.models.export import build_model, export, make_card

    classes = [f"class{i:03d}" for i in range(REFERENCE_CLASSES)]
    card = make_card("efficientnet_b0", classes, DEMO_MEL, 5.0, extra={"weights": "random"})
    export(build_model("efficientnet_b0", REFERENCE_CLASSES), card, path, openvino=False)
    return path


def variants(fp32: Path, folder: Path, audio_dir: Path) -> dict[str, Path]:
    """The FP32 model and its OpenVINO FP32, OpenVINO INT8 and ONNX Runtime INT8 variants,
    made by the quantizer (calibrated on the benchmark's own audio; cached between runs)."""
    names = {"ov-fp32": "OpenVINO FP32", "ov-int8": "OpenVINO INT8", "ort-int8": "onnxruntime INT8"}
    from birdinfer.quantize.variants import output_path

    # The names the quantizer writes (checking other names redid the quantization every run).
    found = {key: output_path(fp32, folder, key) for key in names}
    if not all(p.is_file() for p in found.values()):
        from birdinfer.quantize import QuantizeSettings, load_heldout, quantize, sample_windows

        card = open_backend(fp32).card
        settings = QuantizeSettings(
            variants=("ov-int8", "ort-int8"), torch_reference=False, rounds=3
        )
        result = quantize(
            fp32,
            sample_windows(audio_dir, card),
            load_heldout(audio_dir, card, None),
            folder,
            settings,
        )
        found = {key: result.row(key).path for key in names}
    return {"onnxruntime FP32": fp32, **{names[k]: Path(p) for k, p in found.items()}}


# --- end to end -----------------------------------------------------------------------------


def run_config(
    audio_dir: Path, models: list[Path], out: Path, settings: BenchSettings, **inference
) -> Config:
    return from_dict(
        {
            "input_dir": str(audio_dir),
            "models": [str(m) for m in models],
            # The reference model has random weights: this run measures speed only, so variants
            # the accuracy guard rejected for that model still run (the quantize report, on the
            # trained demo model, is where accuracy is judged).
            "inference": {
                "batch_size": settings.batch_size,
                "allow_rejected_models": True,
                **inference,
            },
            "output": {"submission": str(out), "progress": False},
        }
    )


def naive_baseline(files: list[Path], fp32: Path, cores: int) -> Measurement:
    """What a first notebook does: librosa per window, torch eager, files one after another."""
    import librosa
    import torch

    from birdinfer.models.export import build_model

    card = open_backend(fp32).card
    model = build_model(card.arch, card.num_classes).eval()
    torch.set_num_threads(cores)
    mel, windows = card.mel, 0
    start = time.perf_counter()
    for path in files:
        audio, _ = librosa.load(str(path), sr=card.sample_rate)
        n = max(1, int(np.ceil(len(audio) / 160000)))
        audio = np.pad(audio, (0, n * 160000 - len(audio)))
        specs = []
        for chunk in audio.reshape(n, 160000):
            power = librosa.feature.melspectrogram(
                y=chunk,
                sr=mel.sample_rate,
                n_fft=mel.n_fft,
                hop_length=mel.hop_length,
                n_mels=mel.n_mels,
                fmin=mel.fmin,
                fmax=mel.fmax,
            )
            db = librosa.power_to_db(power, ref=np.max, top_db=80)
            specs.append((db - db.mean()) / (db.std() + 1e-6))
        with torch.no_grad():
            torch.sigmoid(model(torch.from_numpy(np.stack(specs)[:, None].astype(np.float32))))
        windows += n
    return Measurement(
        "naive notebook (torch eager + librosa)", time.perf_counter() - start, windows
    )


def peak_rss_mb(
    audio_dir: Path, models: list[Path], count: int, work: Path, settings: BenchSettings
) -> float:
    """Peak RSS of a fresh process scoring `count` files (links to the benchmark files) with an
    ensemble of `models`."""
    folder = work / f"rss_{count}"
    if not folder.is_dir() or len(list(folder.iterdir())) != count:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        sources = sorted(audio_dir.glob("*.ogg"))
        for i in range(count):
            os.link(sources[i % len(sources)], folder / f"soundscape_{i:05d}.ogg")
    # VmHWM, not ru_maxrss: the rusage high-water mark survives exec, so a child would inherit
    # the benchmark's own peak (torch and NNCF loaded) and report it as its own.
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        "from benchmark import run_config, BenchSettings, vm_hwm_mb; "
        "from birdinfer.runner.steps import run; from pathlib import Path; "
        f"run(run_config(Path({str(folder)!r}), [Path(m) for m in {[str(m) for m in models]!r}], "
        f"Path({str(work / f'rss_{count}.csv')!r}), BenchSettings(batch_size={settings.batch_size}))); "
        "print(vm_hwm_mb())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak), in MB; None off Linux."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    return None


def vm_hwm_mb() -> float:
    """This process's peak resident memory since it started (Linux), in MB."""
    peak = proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dump(path: Path, data: dict) -> None:
    write_json_atomic(json.loads(json.dumps(data, default=str)), path)


def run_benchmark(settings: BenchSettings) -> dict[str, Any]:
    """Every measurement of the timing-budget report, in one run; returns the report data."""
    cores = settings.threads or available_cores()
    work = settings.report_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    audio_dir = (
        settings.input_dir
        or synthetic_folder(work / "audio", settings.files, settings.seconds)[0].parent
    )
    files = sorted(
        p for p in Path(audio_dir).iterdir() if p.suffix.lower() in AudioConfig().extensions
    )
    fp32 = reference_model(work)
    models = variants(fp32, work / "variants", work / "audio")
    card = open_backend(fp32).card
    frontend = LogMel(card.mel, card.image)

    log.info("stages alone on %d files, %d cores", len(files), cores)
    reps = settings.repeats
    decode = best_of(reps, lambda: decode_alone(files, cores))
    windows = np.concatenate(
        [np.concatenate(list(WindowReader(f, AudioConfig()))) for f in files[:16]]
    )
    with threadpool_limits(limits=1, user_api="blas"):  # as in a run: the workers own the cores
        mel = best_of(reps, lambda: mel_alone(windows, frontend, cores, settings.batch_size))
    features = frontend(windows)
    alone = {
        name: model_alone(path, features, cores, settings.batch_size, name, reps)
        for name, path in models.items()
    }

    measurements = {}
    if settings.baseline:
        measurements["baseline"] = naive_baseline(files, fp32, cores)
    for name, path in models.items():
        out = work / f"{name.replace(' ', '_')}.csv"
        measurements[name] = end_to_end(name, run_config(audio_dir, [path], out, settings), reps)
    fastest = min(models, key=lambda n: alone[n].ms_per_window)
    ensemble = end_to_end(
        f"3 x {fastest} on one front end",
        run_config(audio_dir, [models[fastest]] * 3, work / "ensemble.csv", settings),
        reps,
    )
    rss = {
        n: peak_rss_mb(audio_dir, [models[fastest]], n, work, settings) for n in settings.rss_files
    }
    data = assemble(
        settings, cores, len(files), decode, mel, alone, measurements, ensemble, fastest, rss
    )
    data["thread_plans"] = thread_sweep(audio_dir, models[fastest], work, settings, cores)
    return data


def thread_sweep(
    audio_dir: Path, model: Path, work: Path, settings: BenchSettings, cores: int
) -> list:
    """End to end with each (feature workers, runtime threads) pair: what the default rests on."""
    rows = []
    for workers in sorted({1, max(1, cores // 2), cores}):
        for threads in sorted({1, max(1, cores // 2), cores}):
            config = run_config(
                audio_dir, [model], work / "sweep.csv", settings, workers=workers, threads=threads
            )
            m = end_to_end(f"{workers} workers x {threads} threads", config, settings.repeats)
            rows.append(
                {"workers": workers, "threads": threads, "ms_per_window": round(m.ms_per_window, 3)}
            )
    return rows


def assemble(
    settings, cores, n_files, decode, mel, alone, measurements, ensemble, fastest, rss
) -> dict:
    front_ms = decode.ms_per_window + mel.ms_per_window
    baseline = measurements.get("baseline")
    rows = [
        configuration_row(
            m, front_ms, alone[name].ms_per_window if name in alone else None, baseline, settings
        )
        for name, m in measurements.items()
    ]
    return {
        "machine": {"cores": cores, "cpu": cpu_summary(), "kaggle_scale": settings.kaggle_scale},
        "workload": {
            "files": n_files,
            "seconds_per_file": settings.seconds,
            "windows": decode.windows,
            "batch_size": settings.batch_size,
            "model": "efficientnet_b0, 1 channel, 234 classes, 128 mels x 313 frames (2048/512, 32 kHz); "
            "random weights: speed only",
        },
        "stages_alone_ms_per_window": {
            "decode": round(decode.ms_per_window, 3),
            "mel": round(mel.ms_per_window, 3),
            **{name: round(m.ms_per_window, 3) for name, m in alone.items()},
        },
        "configurations": rows,
        "ensemble": ensemble_row(ensemble, front_ms + 3 * alone[fastest].ms_per_window),
        "peak_rss_mb": {str(n): round(v, 1) for n, v in rss.items()},
        "rss_growth": round(rss[settings.rss_files[1]] / rss[settings.rss_files[0]] - 1, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """`birdinfer bench`'s workload flags (the same code) plus the lab's own."""
    import argparse

    from birdinfer.budget import write_report
    from birdinfer.cli.bench import add_workload_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.add_argument("--rss-files", type=int, nargs=2, default=(100, 400), metavar=("N1", "N2"))
    parser.add_argument("--no-baseline", action="store_true", help="skip torch eager + librosa")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO)
    settings = BenchSettings(
        files=args.files,
        input_dir=args.input,
        report_dir=args.report_dir,
        threads=args.cores,
        batch_size=args.batch_size,
        kaggle_scale=args.kaggle_scale,
        rss_files=tuple(args.rss_files),
        baseline=not args.no_baseline,
    )
    data = run_benchmark(settings)
    paths = write_report(data, args.report_dir)
    print(summary(data))
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
