"""The same front end computed by the libraries themselves (torchaudio or librosa), stage by
stage, for `birdinfer frontend check` and the parity tests.

Each stage is computed from the settings with the library's own calls (MelSpectrogram,
AmplitudeToDB, compute_deltas, interpolate; melspectrogram, power_to_db, pcen, delta,
cv2.resize), one window at a time, so that nothing of birdinfer's own arithmetic is reused.
The normalisation steps are written again here in the library's array type, from their
formulas (normalize.py). Importing this module needs neither library; calling it needs one.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from birdinfer.config import ImageConfig, MelConfig, NormStep
from birdinfer.errors import ConfigError
from birdinfer.frontend.amplitude import default_amin
from birdinfer.frontend.normalize import DEFAULT_EPS, IMAGENET_MEAN, IMAGENET_STD

STAGES = ("mel power", "scaled", "normalised", "model input")
LIBRARIES = ("torchaudio", "librosa")


def reference_stages(
    windows: np.ndarray, mel: MelConfig, image: ImageConfig | None, library: str
) -> dict[str, np.ndarray]:
    """{stage: (n, ...) float32} for (n, samples) windows, as `library` computes them."""
    image = image or ImageConfig()
    if library not in LIBRARIES:
        raise ConfigError(f"unknown reference library '{library}' (one of {list(LIBRARIES)})")
    if mel.top_db_scope == "file" or mel.normalization_scope == "file":
        return _file_scoped_stages(windows, mel, image, library)
    if library == "torchaudio":
        return _torchaudio_stages(windows, mel, image)
    return _librosa_stages(windows, mel, image)


def _file_scoped_stages(
    windows: np.ndarray, mel: MelConfig, image: ImageConfig, library: str
) -> dict[str, np.ndarray]:
    """The library's stages with the dB floor or the normalisation taken over all the windows
    at once (torchaudio's AmplitudeToDB on a 3-D batch: one floor, the batch's maximum - top_db),
    then each window's image steps as the library computes them."""
    plain = dataclasses.replace(
        mel, top_db=None, normalization=(), top_db_scope="window", normalization_scope="window"
    )
    stages = reference_stages(windows, plain, ImageConfig(), library)
    scaled = stages["scaled"].astype(np.float64)
    if mel.top_db is not None and mel.amplitude == "db":
        axes = None if mel.top_db_scope == "file" else (1, 2)
        scaled = np.maximum(scaled, scaled.max(axis=axes, keepdims=True) - mel.top_db)
    start = 0 if mel.normalization_scope == "file" else 1
    normalised = _numpy_steps(scaled, mel.normalization, start).astype(np.float32)
    if image == ImageConfig():
        model_input = normalised[:, None]
    elif library == "torchaudio":
        torch = _require("torch", "export")
        functional = _require("torchaudio.functional", "export")
        model_input = np.stack(
            [
                _torch_image(torch, functional, torch.from_numpy(x), image).numpy()
                for x in normalised
            ]
        )
    else:
        librosa = _require("librosa", "test")
        model_input = np.stack([_librosa_image(librosa, x, image) for x in normalised])
    return {
        "mel power": stages["mel power"],
        "scaled": scaled.astype(np.float32),
        "normalised": normalised,
        "model input": model_input.astype(np.float32),
    }


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the {module} reference needs {module} (pip install 'birdinfer[{extra}]')"
        ) from exc


# --- torchaudio --------------------------------------------------------------------------------


def _torchaudio_stages(windows: np.ndarray, mel: MelConfig, image: ImageConfig) -> dict:
    torch = _require("torch", "export")
    transforms = _require("torchaudio.transforms", "export")
    functional = _require("torchaudio.functional", "export")
    if mel.amplitude == "pcen":
        raise ConfigError(
            "torchaudio has no PCEN: use the librosa reference for mel.amplitude: pcen"
        )
    spec = transforms.MelSpectrogram(
        sample_rate=mel.sample_rate,
        n_fft=mel.n_fft,
        win_length=mel.win_length,
        hop_length=mel.hop_length,
        f_min=float(mel.fmin),
        f_max=float(mel.fmax),
        n_mels=mel.n_mels,
        power=mel.power,
        normalized=mel.normalized,
        center=mel.center,
        pad_mode=mel.pad_mode,
        norm=mel.norm,
        mel_scale=mel.mel_scale,
    )
    stages: dict[str, list] = {name: [] for name in STAGES}
    amin = default_amin(mel)
    multiplier = 10.0 if mel.power == 2.0 else 20.0
    with torch.no_grad():
        for window in np.asarray(windows, np.float32):
            power = spec(torch.from_numpy(window))  # (n_mels, frames)
            if mel.amplitude == "log":
                scaled = torch.log(power + mel.log_offset)
            else:
                ref = float(power.max()) if mel.ref == "max" else float(mel.ref)
                scaled = functional.amplitude_to_DB(
                    power[None], multiplier, amin, math.log10(max(amin, ref)), mel.top_db
                )[0]  # (1, n_mels, frames): top_db over this one window
            normalised = _torch_steps(torch, scaled[None], mel.normalization)[0]
            model_input = _torch_image(torch, functional, normalised, image)
            for name, value in zip(STAGES, (power, scaled, normalised, model_input), strict=True):
                stages[name].append(value.numpy().astype(np.float32))
    return {name: np.stack(values) for name, values in stages.items()}


def _torch_steps(torch, x, steps: tuple[NormStep, ...]):
    axes = tuple(range(1, x.dim()))
    for step in steps:
        eps = DEFAULT_EPS if step.eps is None else step.eps
        if step.step == "scale80":
            x = (x + 80) / 80
        elif step.step == "scale":
            x = (x + step.add) / step.divide
        elif step.step == "standardize":
            mean = x.mean(axes, keepdim=True)
            std = x.std(axes, keepdim=True, correction=step.ddof)
            x = (x - mean) / (std + eps)
        elif step.step == "minmax":
            low, high = torch.amin(x, axes, keepdim=True), torch.amax(x, axes, keepdim=True)
            if step.flat_to_zero:
                span = high - low
                x = torch.where(span > eps, (x - low) / torch.where(span > eps, span, 1), 0)
            else:
                x = (x - low) / (high - low + eps)
        elif step.step == "clamp":
            x = x.clamp(
                0.0 if step.low is None else step.low, 1.0 if step.high is None else step.high
            )
        elif step.step == "imagenet":
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x = (x - torch.tensor(step.mean or IMAGENET_MEAN).view(shape)) / torch.tensor(
                step.std or IMAGENET_STD
            ).view(shape)
        elif step.step == "square":
            x = x * x
    return x


def _torch_image(torch, functional, x, image: ImageConfig):
    """(n_mels, frames) -> (c, h, w) with torch's own delta, interpolate and permute."""
    if image.channels == 3 and image.channel_mode == "delta":
        if image.delta_style != "torchaudio":
            raise ConfigError("librosa-style deltas: use the librosa reference")
        moved = x if image.delta_axis == "time" else x.T
        first = functional.compute_deltas(moved[None], win_length=image.delta_width)
        second = functional.compute_deltas(first, win_length=image.delta_width)
        channels = [moved[None], first, second]
        if image.delta_axis == "mel":
            channels = [c.transpose(-1, -2) for c in channels]
        x = torch.cat(channels)[None]
    elif image.channels == 3:
        x = x[None, None].repeat(1, 3, 1, 1)
    else:
        x = x[None, None]
    if image.size is not None:
        if image.resize == "cv2_linear":
            raise ConfigError("cv2 resizing: use the librosa reference (it calls cv2.resize)")
        x = torch.nn.functional.interpolate(
            x,
            size=tuple(image.size),
            mode="bilinear",
            align_corners=False,
            antialias=image.resize == "bilinear_antialias",
        )
    if image.layout == "time_mel":
        x = x.transpose(-1, -2)
    return _torch_steps(torch, x, image.normalization)[0]


# --- librosa -----------------------------------------------------------------------------------


def _librosa_stages(windows: np.ndarray, mel: MelConfig, image: ImageConfig) -> dict:
    librosa = _require("librosa", "test")
    if mel.normalized:
        raise ConfigError("librosa has no STFT normalisation: use the torchaudio reference")
    stages: dict[str, list] = {name: [] for name in STAGES}
    for window in np.asarray(windows, np.float32):
        power = librosa.feature.melspectrogram(
            y=window,
            sr=mel.sample_rate,
            n_fft=mel.n_fft,
            hop_length=mel.hop_length,
            win_length=mel.win_length,
            center=mel.center,
            pad_mode=mel.pad_mode,
            power=mel.power,
            n_mels=mel.n_mels,
            fmin=mel.fmin,
            fmax=mel.fmax,
            htk=mel.mel_scale == "htk",
            norm=mel.norm,
        )
        scaled = _librosa_scale(librosa, power, mel)
        normalised = _numpy_steps(scaled[None], mel.normalization)[0]
        model_input = _librosa_image(librosa, normalised, image)
        for name, value in zip(STAGES, (power, scaled, normalised, model_input), strict=True):
            stages[name].append(np.asarray(value, np.float32))
    return {name: np.stack(values) for name, values in stages.items()}


def _librosa_scale(librosa, power: np.ndarray, mel: MelConfig) -> np.ndarray:
    if mel.amplitude == "log":
        return np.log(power + mel.log_offset)
    if mel.amplitude == "pcen":
        p = mel.pcen
        return librosa.pcen(
            power * p.input_scale,
            sr=mel.sample_rate,
            hop_length=mel.hop_length,
            gain=p.gain,
            bias=p.bias,
            power=p.power,
            time_constant=p.time_constant,
            eps=p.eps,
            b=p.b,
            max_size=p.max_size,
        )
    ref = np.max if mel.ref == "max" else float(mel.ref)
    to_db = librosa.power_to_db if mel.power == 2.0 else librosa.amplitude_to_db
    return to_db(power, ref=ref, amin=default_amin(mel), top_db=mel.top_db)


def _numpy_steps(x: np.ndarray, steps: tuple[NormStep, ...], start: int = 1) -> np.ndarray:
    axes = tuple(range(start, x.ndim))
    for step in steps:
        eps = DEFAULT_EPS if step.eps is None else step.eps
        if step.step == "scale80":
            x = (x + 80) / 80
        elif step.step == "scale":
            x = (x + step.add) / step.divide
        elif step.step == "standardize":
            x = (x - x.mean(axes, keepdims=True)) / (
                x.std(axes, keepdims=True, ddof=step.ddof) + eps
            )
        elif step.step == "minmax":
            low, high = x.min(axes, keepdims=True), x.max(axes, keepdims=True)
            span = high - low
            if step.flat_to_zero:
                x = np.where(span > eps, (x - low) / np.where(span > eps, span, 1), 0)
            else:
                x = (x - low) / (span + eps)
        elif step.step == "clamp":
            x = np.clip(
                x, 0.0 if step.low is None else step.low, 1.0 if step.high is None else step.high
            )
        elif step.step == "imagenet":
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean = np.reshape(step.mean or IMAGENET_MEAN, shape)
            x = (x - mean) / np.reshape(step.std or IMAGENET_STD, shape)
        elif step.step == "square":
            x = x * x
    return x


def _librosa_image(librosa, x: np.ndarray, image: ImageConfig) -> np.ndarray:
    if image.channels == 3 and image.channel_mode == "delta":
        if image.delta_style != "librosa":
            raise ConfigError("torchaudio-style deltas: use the torchaudio reference")
        axis = -1 if image.delta_axis == "time" else -2
        first = librosa.feature.delta(x, width=image.delta_width, order=1, axis=axis)
        second = librosa.feature.delta(x, width=image.delta_width, order=2, axis=axis)
        channels = [x, first, second]
    else:
        channels = [x] * image.channels
    if image.size is not None:
        if image.resize != "cv2_linear":
            raise ConfigError("torch-style resizing: use the torchaudio reference")
        cv2 = _require("cv2", "test")
        height, width = image.size
        channels = [
            cv2.resize(np.asarray(c, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
            for c in channels
        ]
    out = np.stack(channels)
    if image.layout == "time_mel":
        out = out.transpose(0, 2, 1)
    return _numpy_steps(out[None], image.normalization)[0]
