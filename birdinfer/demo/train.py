"""Train the demo model: efficientnet_b0 on seeded synthetic soundscapes, then export it.

Needs the `[export]` extra. Run through `scripts/make_demo.py`; the result ships as
`birdinfer/demo/assets/demo_model.onnx`. Every epoch draws fresh soundscapes (seeds never reused and
disjoint from the demo's held-out seeds), so the model learns the call families, not the clips.

After the one-cycle schedule, a short fine-tune (BatchNorm statistics frozen) adds a penalty on
each window's peak activation in the last stages, so that no window drives them tens of times
above the others: per-tensor INT8 ranges then fit every window (docs/quantization.md).
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
from birdinfer.demo.synth import DEMO_SPECIES, make_soundscape, window_labels, windows_covering
from birdinfer.frontend import LogMel
from birdinfer.models.export import ExportResult, build_model, export, make_card
from birdinfer.scoring import macro_roc_auc_arrays

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
    # The quantization-friendly fine-tune after the one-cycle schedule (0 epochs: none).
    finetune_epochs: int = 1
    finetune_learning_rate: float = 3e-4
    # Weight of the mean squared per-window peak |activation| of the last stages (PEAK_STAGES).
    peak_penalty: float = 1e-4
    # Validation after every epoch, not only after the last one of each phase: it lengthens
    # make_demo (docs/quantization.md has the times). Evaluating changes nothing in the
    # model (eval mode, no gradients, no random draws).
    evaluate_every_epoch: bool = False


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
        n = windows_covering(seconds)
        audio = np.zeros(n * window, np.float32)
        audio[: scape.audio.shape[0]] = scape.audio
        return mel(audio.reshape(n, window)), window_labels(scape.events, n, codes)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(one, seeds))
    features = np.concatenate([f for f, _ in parts])
    labels = np.concatenate([y for _, y in parts]).astype(np.float32)
    return features, labels


def train(settings: TrainSettings = TrainSettings()):
    """Train from scratch, fine-tune with the peak-activation penalty, and return the model (eval
    mode) and the validation macro ROC-AUC."""
    import torch

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    mel = LogMel(DEMO_MEL)
    model = build_model(DEMO_ARCH, num_classes=len(DEMO_SPECIES), drop_rate=0.2)
    steps = _steps_per_epoch(settings)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings.learning_rate, total_steps=settings.epochs * steps
    )
    val_x, val_y = make_windows(
        range(settings.validation_seed, settings.validation_seed + settings.validation_soundscapes),
        settings.soundscape_seconds,
        mel,
    )
    rng = np.random.default_rng(settings.seed)
    auc = float("nan")
    for epoch in range(settings.epochs):
        started = time.perf_counter()
        loss = _epoch(model, epoch, optimizer, schedule, mel, rng, settings)
        measured = None
        if settings.evaluate_every_epoch or epoch == settings.epochs - 1:
            auc = measured = evaluate(model, val_x, val_y)
        _log_epoch("epoch", epoch, settings.epochs, loss, measured, started)
    if settings.finetune_epochs:
        auc = _finetune(model, mel, rng, settings, val_x, val_y)
    return model.eval(), auc


# The outputs whose per-window peaks the fine-tune penalises: efficientnet_b0's last three stages
# and the features before the global pool, where the peaks were largest (docs/quantization.md).
PEAK_STAGES = ("blocks.4", "blocks.5", "blocks.6", "bn2")


def _finetune(model, mel: LogMel, rng, settings: TrainSettings, val_x, val_y) -> float:
    """Fresh soundscapes, a cosine-decayed learning rate, BatchNorm statistics frozen, and the
    loss plus `peak_penalty` x the mean squared per-window peak |activation| of PEAK_STAGES."""
    import torch

    steps = _steps_per_epoch(settings)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.finetune_learning_rate, weight_decay=1e-2
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, settings.finetune_epochs * steps
    )
    peaks: list = []
    modules = dict(model.named_modules())
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out: peaks.append(out.abs().amax(dim=(1, 2, 3)).pow(2).mean())
        )
        for name in PEAK_STAGES
    ]
    penalty = (peaks, settings.peak_penalty)
    auc = float("nan")
    try:
        for epoch in range(settings.finetune_epochs):
            started = time.perf_counter()
            index = settings.epochs + epoch  # soundscape seeds continue after training's
            loss = _epoch(model, index, optimizer, schedule, mel, rng, settings, penalty)
            measured = None
            if settings.evaluate_every_epoch or epoch == settings.finetune_epochs - 1:
                auc = measured = evaluate(model, val_x, val_y)
            _log_epoch("fine-tune epoch", epoch, settings.finetune_epochs, loss, measured, started)
    finally:
        for hook in hooks:
            hook.remove()
    return auc


def _steps_per_epoch(settings: TrainSettings) -> int:
    windows = settings.soundscapes_per_epoch * windows_covering(settings.soundscape_seconds)
    return windows // settings.batch_size


def _epoch(model, index, optimizer, schedule, mel, rng, settings, penalty=None) -> float:
    """One epoch on fresh soundscapes (seeds from `index`); returns the mean loss. With
    `penalty` = (list the hooks fill, weight), BatchNorm keeps its running statistics."""
    import torch

    first = TRAIN_SEED_BASE + index * settings.soundscapes_per_epoch
    x, y = make_windows(
        range(first, first + settings.soundscapes_per_epoch), settings.soundscape_seconds, mel
    )
    order = rng.permutation(len(x))
    model.train()
    if penalty is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    for step in range(_steps_per_epoch(settings)):
        idx = order[step * settings.batch_size : (step + 1) * settings.batch_size]
        batch = torch.from_numpy(_augment(x[idx], rng))
        if penalty is not None:
            penalty[0].clear()
        loss = loss_fn(model(batch), torch.from_numpy(y[idx]))
        if penalty is not None:
            loss = loss + penalty[1] * torch.stack(penalty[0]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _log_epoch(
    what: str, epoch: int, total: int, loss: float, auc: float | None, started: float
) -> None:
    validation = f"validation macro ROC-AUC {auc:.4f}" if auc is not None else "not validated"
    seconds = time.perf_counter() - started
    log.info("%s %d/%d: loss %.4f, %s (%.0f s)", what, epoch + 1, total, loss, validation, seconds)


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
        extra={
            "trained_on": "birdinfer.demo.synth demo soundscapes",
            "validation_macro_roc_auc": auc,
        },
    )
    return export(model, card, out, openvino=False), auc
