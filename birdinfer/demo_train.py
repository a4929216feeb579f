"""Train the demo model: efficientnet_b0 on seeded synthetic soundscapes, then export it.

Needs the `[export]` extra. Run through `scripts/make_demo.py`; the result ships as
`birdinfer/assets/demo_model.onnx`. Every epoch draws fresh soundscapes (seeds never reused and
disjoint from the demo's held-out seeds), so the model learns the call families, not the clips.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from birdinfer.config import AudioConfig, MelConfig
from birdinfer.export import ExportResult, build_model, export, make_card
from birdinfer.features import LogMel
from birdinfer.metrics import macro_roc_auc_arrays
from birdinfer.synth import DEMO_SPECIES, make_soundscape, n_windows_for, window_labels

log = logging.getLogger(__name__)

DEMO_ARCH = "efficientnet_b0"
DEMO_MEL = MelConfig()  # the 2048 / 512 / 128-mel preset of the top teams, standardised per window
TRAIN_SEED_BASE = 1_000_000  # training soundscapes; the demo's held-out seeds stay far below


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 9
    soundscapes_per_epoch: int = 100
    soundscape_seconds: float = 60.0
    batch_size: int = 32
    learning_rate: float = 3e-3
    threads: int = 2
    seed: int = 0
    validation_soundscapes: int = 16
    validation_seed: int = 900_000


def make_windows(
    seeds: range, seconds: float, mel: LogMel, workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel windows and 0/1 labels of the synthetic soundscapes with the given seeds.

    Soundscapes are made on `workers` threads (numpy's and scipy's FFTs release the GIL); each is
    seeded on its own and the results keep the order of `seeds`, so the data do not depend on it.
    """
    codes = [s.code for s in DEMO_SPECIES]
    window = AudioConfig().window_samples

    def one(seed: int) -> tuple[np.ndarray, np.ndarray]:
        scape = make_soundscape(seed=seed, seconds=seconds)
        n = n_windows_for(seconds)
        audio = np.zeros(n * window, np.float32)
        audio[: scape.audio.shape[0]] = scape.audio
        return mel(audio.reshape(n, window)), window_labels(scape.events, n, codes)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(one, seeds))
    features = np.concatenate([f for f, _ in parts])
    labels = np.concatenate([y for _, y in parts]).astype(np.float32)
    return features, labels


def train(settings: TrainSettings = TrainSettings()):
    """Train from scratch and return the model (eval mode) and the validation macro ROC-AUC."""
    import torch

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    mel = LogMel(DEMO_MEL)
    model = build_model(DEMO_ARCH, num_classes=len(DEMO_SPECIES), drop_rate=0.2)
    steps_per_epoch = settings.soundscapes_per_epoch * n_windows_for(settings.soundscape_seconds)
    steps_per_epoch //= settings.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings.learning_rate, total_steps=settings.epochs * steps_per_epoch
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    val_x, val_y = make_windows(
        range(settings.validation_seed, settings.validation_seed + settings.validation_soundscapes),
        settings.soundscape_seconds,
        mel,
    )
    rng = np.random.default_rng(settings.seed)
    auc = float("nan")
    for epoch in range(settings.epochs):
        started = time.perf_counter()
        first = TRAIN_SEED_BASE + epoch * settings.soundscapes_per_epoch
        x, y = make_windows(
            range(first, first + settings.soundscapes_per_epoch), settings.soundscape_seconds, mel
        )
        order = rng.permutation(len(x))
        model.train()
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            batch = torch.from_numpy(_augment(x[idx], rng))
            loss = loss_fn(model(batch), torch.from_numpy(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        auc = evaluate(model, val_x, val_y)
        log.info(
            "epoch %d/%d: loss %.4f, validation macro ROC-AUC %.4f (%.0f s)",
            epoch + 1,
            settings.epochs,
            np.mean(losses),
            auc,
            time.perf_counter() - started,
        )
    return model.eval(), auc


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random circular time shift: calls may sit anywhere in a window."""
    shift = int(rng.integers(0, x.shape[-1]))
    return np.ascontiguousarray(np.roll(x, shift, axis=-1))


def evaluate(model, features: np.ndarray, labels: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        scores = np.concatenate(
            [
                model(torch.from_numpy(features[i : i + 64])).numpy()
                for i in range(0, len(features), 64)
            ]
        )
    return macro_roc_auc_arrays(labels, scores)


def make_demo_model(
    out: Path, settings: TrainSettings = TrainSettings()
) -> tuple[ExportResult, float]:
    """Train, then export ONNX (and check parity) to `out`; returns the export result and AUC."""
    model, auc = train(settings)
    card = make_card(
        DEMO_ARCH,
        [s.code for s in DEMO_SPECIES],
        DEMO_MEL,
        AudioConfig().window_seconds,
        extra={"trained_on": "birdinfer.synth demo soundscapes", "validation_macro_roc_auc": auc},
    )
    return export(model, card, out, openvino=False), auc
