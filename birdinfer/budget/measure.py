"""The budget report's measurements: what each stage and each model of a config costs on this
machine, end to end, and what that means against each BirdCLEF edition's CPU budget.

Every figure is measured in one run on the same files: decode and each distinct front end alone at
full cores, each model alone on those features, then a run per model and one of the whole
ensemble. The projection scales the per-window cost to each edition's hidden test set.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from birdinfer.audio import WindowReader
from birdinfer.config import AudioConfig, CompetitionConfig, Config, load_config
from birdinfer.demo import write_soundscapes
from birdinfer.errors import AudioError
from birdinfer.frontend import LogMel
from birdinfer.models.backends import open_backend
from birdinfer.models.host import cpu_summary
from birdinfer.runner.steps import run
from birdinfer.scorer.ensemble import Ensemble
from birdinfer.scorer.threads import available_cores

log = logging.getLogger(__name__)

# The bundled edition configs hold each hidden test set and CPU budget (competition.*).
EDITION_CONFIGS = ("birdclef2023", "birdclef2024", "birdclef2025", "birdclef2026")
# Windows whose features the models are timed on alone.
FEATURE_WINDOWS = 192


@dataclass(frozen=True)
class BudgetSettings:
    config: str = "default"  # its members (unless `models` names others) and inference settings
    models: tuple[str, ...] = ()
    input_dir: Path | None = None  # a folder of recordings instead of synthetic OGG files
    files: int = 40
    seconds: float = 60.0
    batch_size: int = 16
    cores: int | None = None  # None: every available core
    report_dir: Path = Path("reports/bench")
    kaggle_scale: float = 1.0  # Kaggle's 4 vCPU (2 cores x 2 hyperthreads) vs the cores here
    reserve_minutes: float = 5.0  # kept out of each budget for start-up and writing
    # Each timing is the best of this many repeats: single runs of a few seconds on a shared
    # machine vary as much as the differences being measured.
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


def synthetic_folder(folder: Path, files: int, seconds: float, seed: int = 7000) -> list[Path]:
    """N synthetic OGG soundscapes (cached: made once per folder and count)."""
    existing = sorted(folder.glob("*.ogg"))
    if len(existing) == files:
        return existing
    shutil.rmtree(folder, ignore_errors=True)
    return write_soundscapes(folder, files, seed=seed, seconds=seconds, fmt="ogg")


def decode_alone(files: list[Path], cores: int, config: AudioConfig | None = None) -> Measurement:
    """Decode + resample + windowing, files spread over every core."""
    config = config or AudioConfig()

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


def editions() -> list[CompetitionConfig]:
    """Each BirdCLEF edition's competition facts, from its bundled config."""
    return [load_config(name).competition for name in EDITION_CONFIGS]


def project(measurement: Measurement, front_ms: float, settings) -> dict[str, Any]:
    """Minutes each edition's hidden set would take, and how many models of this cost fit
    (`settings`: anything with kaggle_scale and reserve_minutes)."""
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


def budget_config(
    settings: BudgetSettings, audio_dir: Path, models: list[str], out: Path
) -> Config:
    """The settings' config scoring `audio_dir` with `models`, writing only into the work folder."""
    overrides = {
        "input_dir": str(audio_dir),
        "demo": None,
        "inference.batch_size": settings.batch_size,
        "output.submission": str(out),
        "output.progress": False,
    }
    if models:
        overrides["models"] = list(models)
    return load_config(settings.config, overrides)


def measure_budget(settings: BudgetSettings) -> dict[str, Any]:
    """Every measurement of the budget report, in one run; returns the report data."""
    cores = settings.cores or available_cores()
    work = settings.report_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    audio_dir = settings.input_dir or (
        synthetic_folder(work / "audio", settings.files, settings.seconds)[0].parent
    )
    config = budget_config(settings, audio_dir, list(settings.models), work / "all.csv")
    models = list(settings.models) or [member.path for member in config.models]
    extensions = config.audio.extensions
    files = sorted(p for p in Path(audio_dir).iterdir() if p.suffix.lower() in extensions)
    if not files:
        raise AudioError(f"{audio_dir}: no recordings ({', '.join(extensions)})")
    reps = settings.repeats

    log.info("stages alone on %d files, %d cores", len(files), cores)
    decode = best_of(reps, lambda: decode_alone(files, cores, config.audio))
    fronts, alone = stages_alone(models, files[0], cores, settings)
    front_ms = decode.ms_per_window + sum(m.ms_per_window for m in fronts)
    rows = []
    for path in models:
        one = budget_config(settings, audio_dir, [path], work / f"{Path(path).name}.csv")
        measured = end_to_end(Path(path).name, one, reps)
        rows.append(
            configuration_row(measured, front_ms, alone[path].ms_per_window, None, settings)
        )
    ensemble = None
    if len(models) > 1:  # the members together, as the config weighs and runs them
        whole = end_to_end(f"all {len(models)} members", config, reps)
        ensemble = ensemble_row(whole, front_ms + sum(m.ms_per_window for m in alone.values()))
    return {
        "machine": {"cores": cores, "cpu": cpu_summary(), "kaggle_scale": settings.kaggle_scale},
        "workload": {
            "files": len(files),
            "seconds_per_file": settings.seconds,
            "windows": decode.windows,
            "batch_size": settings.batch_size,
            "model": ", ".join(Path(p).name for p in models),
        },
        "stages_alone_ms_per_window": {
            "decode": round(decode.ms_per_window, 3),
            **{m.name: round(m.ms_per_window, 3) for m in fronts},
            **{m.name: round(m.ms_per_window, 3) for m in alone.values()},
        },
        "configurations": rows,
        "ensemble": ensemble,
    }


def stages_alone(
    models: list[str], recording: Path, cores: int, settings: BudgetSettings
) -> tuple[list[Measurement], dict[str, Measurement]]:
    """Each distinct front end alone, then each model alone on its features (windows of
    `recording`, repeated to FEATURE_WINDOWS)."""
    fronts: dict[str, Measurement] = {}
    alone = {}
    for path in models:
        card = open_backend(path).card
        audio = AudioConfig(sample_rate=card.sample_rate, window_seconds=card.window_seconds)
        windows = np.concatenate(list(WindowReader(recording, audio)))
        windows = np.resize(windows, (FEATURE_WINDOWS, windows.shape[1]))
        if card.waveform:
            features = windows.reshape(len(windows), *card.input_shape)
        else:
            features = _front_end(card, windows, cores, settings, fronts)
        name = Path(path).name
        alone[path] = model_alone(
            path, features, cores, settings.batch_size, name, settings.repeats
        )
    return list(fronts.values()), alone


def _front_end(card, windows, cores, settings, fronts: dict[str, Measurement]) -> np.ndarray:
    """The card's features of `windows`; its front end timed once per distinct setting."""
    frontend = LogMel(card.mel, card.image)
    key = repr((card.mel, card.image))
    if key not in fronts:
        with threadpool_limits(limits=1, user_api="blas"):  # as in a run: workers own the cores
            measured = best_of(
                settings.repeats,
                lambda: mel_alone(windows, frontend, cores, settings.batch_size),
            )
        measured.name = f"front end {len(fronts) + 1} ({card.mel.n_mels} mels)"
        fronts[key] = measured
    return frontend(windows)


def configuration_row(
    m: Measurement, front_ms: float, alone_ms: float | None, baseline: Measurement | None, settings
) -> dict[str, Any]:
    """One end-to-end run: its cost per window, beside the sum of its stages alone, projected."""
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
    if alone_ms is not None:
        stages_sum = front_ms + alone_ms
        row["sum_of_stages_alone_ms"] = round(stages_sum, 3)
        row["end_to_end_over_sum_of_stages"] = round(m.ms_per_window / stages_sum, 3)
    row["projection"] = project(m, front_ms, settings)
    return row


def ensemble_row(m: Measurement, members_alone_ms: float) -> dict[str, Any]:
    """An ensemble's run against its front end plus each member alone."""
    return {
        "configuration": m.name,
        "ms_per_window": round(m.ms_per_window, 3),
        "front_end_plus_members_alone_ms": round(members_alone_ms, 3),
        "ratio": round(m.ms_per_window / members_alone_ms, 3),
    }


def summary(data: dict[str, Any]) -> str:
    """The report's headline figures, one line each."""
    lines = [f"stages alone (ms/window): {data['stages_alone_ms_per_window']}"]
    for row in data["configurations"]:
        extra = ""
        if row.get("end_to_end_over_sum_of_stages"):
            extra = f", e2e/sum of stages {row['end_to_end_over_sum_of_stages']:.2f}"
        speed = (
            f", {row['speedup_vs_baseline']:.2f}x baseline" if row["speedup_vs_baseline"] else ""
        )
        lines.append(
            f"{row['configuration']}: {row['ms_per_window']:.2f} ms/window, "
            f"{row['realtime_factor']:.0f}x real time{speed}{extra}"
        )
        fits = [
            f"{k} {'fits' if v['fits'] else 'over'} ({v['minutes']:.0f}/{v['budget_minutes']} min)"
            for k, v in row["projection"].items()
        ]
        lines.append("  " + ", ".join(fits))
    if data.get("ensemble"):
        ens = data["ensemble"]
        lines.append(f"{ens['configuration']}: {ens['ratio']:.2f}x (front end + members alone)")
    if data.get("peak_rss_mb"):
        lines.append(f"peak RSS {data['peak_rss_mb']} MB: growth {100 * data['rss_growth']:+.1f}%")
    return "\n".join(lines)
