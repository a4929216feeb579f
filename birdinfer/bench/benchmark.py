"""The timing-budget benchmark: where the time goes, what fits each competition's budget.

Everything is measured side by side in one run on the same files: each stage alone at full
cores, then end to end per runtime / precision, a naive notebook baseline, a 3-member ensemble on
one front end, and peak memory for two folder sizes (each in a fresh process). Results are
projected onto each BirdCLEF edition's hidden test set and CPU budget.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from birdinfer.audio.decode import WindowReader
from birdinfer.config import AudioConfig, CompetitionConfig, Config, from_dict, load_config
from birdinfer.demo.synth import write_soundscapes
from birdinfer.frontend.logmel import LogMel
from birdinfer.models.backends import open_backend
from birdinfer.output.atomic import write_json_atomic
from birdinfer.runner.steps import run
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.threads import available_cores

log = logging.getLogger(__name__)

# The bundled edition configs hold each hidden test set and CPU budget (competition.*).
EDITION_CONFIGS = ("birdclef2023", "birdclef2024", "birdclef2025", "birdclef2026")
REFERENCE_CLASSES = 234  # BirdCLEF+ 2026


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


@dataclass
class Measurement:
    name: str
    wall_seconds: float
    windows: int
    note: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ms_per_window(self) -> float:
        return 1000.0 * self.wall_seconds / max(self.windows, 1)

    @property
    def realtime_factor(self) -> float:
        return self.windows * 5.0 / max(self.wall_seconds, 1e-9)


# --- inputs ---------------------------------------------------------------------------------


def synthetic_folder(folder: Path, files: int, seconds: float, seed: int = 7000) -> list[Path]:
    """N synthetic OGG soundscapes (cached: made once per folder and count)."""
    existing = sorted(folder.glob("*.ogg"))
    if len(existing) == files:
        return existing
    shutil.rmtree(folder, ignore_errors=True)
    return write_soundscapes(folder, files, seed=seed, seconds=seconds, fmt="ogg")


def reference_model(folder: Path) -> Path:
    """efficientnet_b0, 1 channel, 234 classes, 128 x 313 (random weights: speed only)."""
    path = folder / "efficientnet_b0_234.onnx"
    if path.is_file():
        return path
    from birdinfer.demo.train import DEMO_MEL
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
        from birdinfer.quantize.accuracy_guard import load_heldout
        from birdinfer.quantize.calibration import sample_windows
        from birdinfer.quantize.runner import QuantizeSettings, quantize

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


# --- stages alone ---------------------------------------------------------------------------


def decode_alone(files: list[Path], cores: int) -> Measurement:
    """Decode + resample + windowing, files spread over every core."""
    config = AudioConfig()

    def decode(path: Path) -> int:
        return sum(len(group) for group in WindowReader(path, config))

    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        windows = sum(pool.map(decode, files))
    return Measurement("decode alone", time.perf_counter() - start, windows)


def mel_alone(windows: np.ndarray, frontend: LogMel, cores: int, batch: int) -> Measurement:
    batches = [windows[i : i + batch] for i in range(0, len(windows), batch)]
    frontend(batches[0])  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(frontend, batches))
    return Measurement("mel alone", time.perf_counter() - start, len(windows))


def model_alone(
    path: Path, features: np.ndarray, cores: int, batch: int, name: str, repeats: int = 3
) -> Measurement:
    backend = open_backend(path, threads=cores)
    backend(features[:batch])  # warm-up: compile, allocate
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(features), batch):
            backend(features[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return Measurement(f"{name} alone", best, len(features))


def best_of(repeats: int, measure) -> Measurement:
    """The fastest of `repeats` calls of `measure()`: the least disturbed by other load."""
    return min((measure() for _ in range(repeats)), key=lambda m: m.wall_seconds)


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


def end_to_end(name: str, config: Config, repeats: int = 1) -> Measurement:
    """Runs with the models already loaded (the one-off load/compile is not counted); the best
    of `repeats` runs, each with fresh stage timers."""

    def once() -> Measurement:
        ensemble = Ensemble(config)
        result = run(config, ensemble)
        return Measurement(
            name, result.wall_seconds, result.windows, stage_seconds=dict(result.stage_seconds)
        )

    return best_of(repeats, once)


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
        "from birdinfer.bench.benchmark import run_config, BenchSettings, vm_hwm_mb; "
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


# --- projections ----------------------------------------------------------------------------


def editions() -> list[CompetitionConfig]:
    """Each BirdCLEF edition's competition facts, from its bundled config."""
    return [load_config(name).competition for name in EDITION_CONFIGS]


def project(measurement: Measurement, front_ms: float, settings: BenchSettings) -> dict[str, Any]:
    """Minutes each edition's hidden set would take, and how many models of this cost fit."""
    rows = {}
    model_ms = max(measurement.ms_per_window - front_ms, 1e-6)
    for edition in editions():
        files, seconds, budget = edition.test_files, edition.file_seconds, edition.budget_minutes
        windows = files * seconds / 5.0
        total = windows * measurement.ms_per_window / 60000.0 * settings.kaggle_scale
        front = windows * front_ms / 60000.0 * settings.kaggle_scale
        per_model = windows * model_ms / 60000.0 * settings.kaggle_scale
        usable = budget - settings.reserve_minutes
        rows[edition.name] = {
            "minutes": round(total, 1),
            "budget_minutes": budget,
            "fits": total <= usable,
            "models_that_fit": max(0, int((usable - front) // per_model)),
        }
    return rows


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
    rows = []
    for name, m in measurements.items():
        row = {
            "configuration": m.name,
            "ms_per_window": round(m.ms_per_window, 3),
            "realtime_factor": round(m.realtime_factor, 1),
            "speedup_vs_baseline": round(baseline.wall_seconds / m.wall_seconds, 2)
            if baseline
            else None,
            "stage_ms_per_window": {
                k: round(1000 * v / max(m.windows, 1), 3) for k, v in m.stage_seconds.items()
            },
        }
        if name in alone:
            stages_sum = front_ms + alone[name].ms_per_window
            row["sum_of_stages_alone_ms"] = round(stages_sum, 3)
            row["end_to_end_over_sum_of_stages"] = round(m.ms_per_window / stages_sum, 3)
        row["projection"] = project(m, front_ms, settings)
        rows.append(row)
    ensemble_budget = front_ms + 3 * alone[fastest].ms_per_window
    return {
        "machine": {"cores": cores, "cpu": _cpu_name(), "kaggle_scale": settings.kaggle_scale},
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
        "ensemble": {
            "configuration": ensemble.name,
            "ms_per_window": round(ensemble.ms_per_window, 3),
            "front_end_plus_members_alone_ms": round(ensemble_budget, 3),
            "ratio": round(ensemble.ms_per_window / ensemble_budget, 3),
        },
        "peak_rss_mb": {str(n): round(v, 1) for n, v in rss.items()},
        "rss_growth": round(rss[settings.rss_files[1]] / rss[settings.rss_files[0]] - 1, 3),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def summary(data: dict[str, Any]) -> str:
    """The figures the throughput issue asks for, one line each."""
    rows = {r["configuration"]: r for r in data["configurations"]}
    lines = [f"stages alone (ms/window): {data['stages_alone_ms_per_window']}"]
    for name, row in rows.items():
        extra = ""
        if row.get("end_to_end_over_sum_of_stages"):
            extra = f", e2e/sum of stages {row['end_to_end_over_sum_of_stages']:.2f}"
        speed = (
            f", {row['speedup_vs_baseline']:.2f}x baseline" if row["speedup_vs_baseline"] else ""
        )
        lines.append(
            f"{name}: {row['ms_per_window']:.2f} ms/window, {row['realtime_factor']:.0f}x real time{speed}{extra}"
        )
    ens = data["ensemble"]
    lines.append(f"{ens['configuration']}: {ens['ratio']:.2f}x (front end + members alone)")
    lines.append(f"peak RSS {data['peak_rss_mb']} MB: growth {100 * data['rss_growth']:+.1f}%")
    return "\n".join(lines)
