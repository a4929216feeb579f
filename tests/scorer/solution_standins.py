"""Tiny random-weight torch stand-ins for two top solutions' models (for the end-to-end tests in
test_solutions_end_to_end.py; `--factory` imports this file as `tests.scorer.solution_standins`).

The real models (an eca_nfnet_l0 in the 2025 2nd place's graph, EfficientNetV2-S / NFNet in the
2026 2nd place's) are too heavy for a test; what the tests check is the handling around them,
so each stand-in keeps its solution's input and front end and replaces the backbone by one
small convolution:

- `Wave2025`: raw audio in, the front end inside the graph as VSydorskyy/BirdCLEF_2025_2nd_place
  builds it (code_base/models/wave_clasifier.py `_create_feature_extractor`; code_base/models/
  blocks.py `TraceableMelspec` with `normalized: True`, `ChannelAgnosticAmplitudeToDB` (top_db 80
  per input), `NormalizeMelSpec(exportable=True)`). Their STFT is nnAudio's, a convolution with
  Fourier kernels; so is this one (n_fft 512 here: the front end's size does not matter to the
  handling checked, and 2048 taps make the test slow). One extra term reads the input's level,
  so that a missing peak normalisation shows in the scores (the rest is scale-invariant up to
  the dB floor).
- `Mel2026`: a (3, n_mels, frames) min-max log-mel in, as the 2026 2nd place's ONNX models take
  (`mel_spec` input, notebooks/"2nd place ensemble inference script.py").
"""

from __future__ import annotations

import math

import torch
from torch import nn

SAMPLE_RATE = 32000


def _loud(module: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
    """Seeded weights scaled so that the logits spread over a few units (not so far that the
    sigmoid saturates: rank blending would then rank float32 ties of 1.0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * scale)
    return module


class Head(nn.Module):
    def __init__(self, in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 8, 3, stride=2)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.fc(pooled)


class Wave2025(nn.Module):
    def __init__(self, num_classes: int, n_fft: int = 512, hop: int = 256, n_mels: int = 64):
        super().__init__()
        import torchaudio

        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
        window = torch.hann_window(n_fft, dtype=torch.float64)
        angle = 2 * math.pi * k * n / n_fft
        kernels = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
        self.register_buffer("kernels", kernels[:, None, :].float())
        self.register_buffer("norm", window.pow(2).sum().float())  # normalized=True, on power
        fb = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, 20.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE, None, "htk"
        )
        self.register_buffer("fb", fb)
        self.n_fft, self.hop, self.bins = n_fft, hop, n_fft // 2 + 1
        self.head = Head(1, num_classes)
        self.level = nn.Linear(1, num_classes)

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        half = self.n_fft // 2
        padded = nn.functional.pad(x[:, None], (half, half), mode="reflect")
        parts = nn.functional.conv1d(padded, self.kernels, stride=self.hop)
        power = (parts[:, : self.bins] ** 2 + parts[:, self.bins :] ** 2) / self.norm
        return torch.matmul(power.transpose(1, 2), self.fb).transpose(1, 2)  # (b, mels, t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(torch.clamp(self.spectrum(x), min=1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0)
        std = (db - db.mean((1, 2), keepdim=True)) / (db.std((1, 2), keepdim=True) + 1e-6)
        low, high = std.amin(dim=(1, 2), keepdim=True), std.amax(dim=(1, 2), keepdim=True)
        image = ((std - low) / (high - low + 1e-6))[:, None]
        level = torch.log(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return self.head(image) + self.level(level)


class Mel2026(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = Head(3, num_classes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return 0.2 * self.head(mel * 4.0 - 2.0)


def build_2025(num_classes: int) -> nn.Module:
    return _loud(Wave2025(num_classes), seed=2025).eval()


def build_2026(num_classes: int, seed: int = 2026) -> nn.Module:
    return _loud(Mel2026(num_classes), seed=seed, scale=0.3).eval()


def build_2026_second(num_classes: int) -> nn.Module:
    return build_2026(num_classes, seed=7)
