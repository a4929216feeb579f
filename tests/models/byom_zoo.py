"""Tiny models shaped like the ones top BirdCLEF teams train, for the bring-your-model tests.

Each is the team's own nn.Module around a small timm backbone (built offline, pretrained=False):
a GeM-pooled classifier whose weights live under `backbone.`, an SED head returning a dict of
clip-wise and frame-wise outputs (scored on 5 s rows, or over 20 s sliding windows), a 3-channel
backbone behind a wrapper that repeats a 1-channel mel, a model with a second input, a waveform
model with a torchaudio mel inside its graph, and a stand-in for a foundation model such as
Perch v2 (raw audio in, its own label list, an embedding out). The tests load this file by path,
as `birdinfer export --factory tests/models/byom_zoo.py:gem_classifier` does, so it works in any
test layout.
"""

from __future__ import annotations

import timm
import torch
import torchaudio
from torch import nn

ARCH = "test_efficientnet"


def _backbone(in_chans: int = 1, arch: str = ARCH) -> nn.Module:
    """Feature maps (batch, features, freq, time), no pooling and no head."""
    return timm.create_model(
        arch, pretrained=False, in_chans=in_chans, num_classes=0, global_pool=""
    )


class GeM(nn.Module):
    """Generalised mean pooling over frequency and time with a learnt exponent."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor([p]))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


class GeMClassifier(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 1) -> None:
        super().__init__()
        self.backbone = _backbone(in_chans)
        self.pool = GeM()
        self.head = nn.Linear(self.backbone.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.backbone(x)))


class SEDNet(nn.Module):
    """Attention SED head: frame-wise sigmoid scores, pooled by a softmax attention over time."""

    def __init__(self, num_classes: int, in_chans: int = 1) -> None:
        super().__init__()
        self.backbone = _backbone(in_chans)
        features = self.backbone.num_features
        self.att = nn.Conv1d(features, num_classes, 1)
        self.cla = nn.Conv1d(features, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone(x).mean(dim=2)  # (batch, features, frames): frequency averaged out
        att = torch.softmax(torch.tanh(self.att(f)), dim=-1)
        cla = self.cla(f)
        frames = torch.sigmoid(cla)
        return {
            "clipwise": (att * frames).sum(dim=-1),  # probabilities
            "framewise": frames.transpose(1, 2),  # (batch, frames, classes), probabilities
            "logit": (att * cla).sum(dim=-1),  # logits
        }


class RepeatChannels(nn.Module):
    """A 3-channel backbone trained on the mel repeated: the wrapper takes 1 channel."""

    def __init__(self, num_classes: int, in_chans: int = 1) -> None:
        super().__init__()
        self.model = timm.create_model(ARCH, pretrained=False, in_chans=3, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.expand(-1, 3, -1, -1))


class ShiftInput(nn.Module):
    """A second input (say, the TTA shift in seconds) that moves the logits."""

    def __init__(self, num_classes: int, in_chans: int = 1) -> None:
        super().__init__()
        self.net = GeMClassifier(num_classes, in_chans)
        self.shift = nn.Linear(1, num_classes)

    def forward(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.shift(shift)


class WaveformCNN(nn.Module):
    """Raw audio (batch, 1, samples) in: torchaudio's MelSpectrogram and AmplitudeToDB inside
    the graph (as the 2023 and 2025 2nd places exported theirs), per-window standardisation,
    then the GeM classifier."""

    def __init__(self, num_classes: int, sample_rate: int = 32000) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=1024, hop_length=320, n_mels=64, f_min=20, f_max=16000
        )
        self.db = torchaudio.transforms.AmplitudeToDB(top_db=80)
        self.net = GeMClassifier(num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, 1, mels, frames): AmplitudeToDB clamps top_db per 4-D item, so one window's
        # floor never depends on its batch-mates.
        db = self.db(self.mel(x[:, 0])[:, None])
        mean = db.mean(dim=(2, 3), keepdim=True)
        std = db.std(dim=(2, 3), keepdim=True)
        return (db - mean) / (std + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(x))


class PerchLike(nn.Module):
    """A stand-in for a foundation model: 5 s of raw audio (batch, samples) in, a learnt
    framing front end, an embedding, and logits over its own label list."""

    def __init__(self, num_classes: int, dims: int = 48) -> None:
        super().__init__()
        self.frames = nn.Conv1d(1, 32, kernel_size=640, stride=320)
        self.mix = nn.Conv1d(32, dims, kernel_size=5, padding=2)
        self.head = nn.Linear(dims, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        energy = torch.log(self.frames(x[:, None]).abs() + 1e-3)
        embedding = torch.tanh(self.mix(energy)).mean(dim=-1)
        return {"label": self.head(embedding), "embedding": embedding}


def waveform_cnn(num_classes: int) -> nn.Module:
    return WaveformCNN(num_classes)


def perch_like(num_classes: int) -> nn.Module:
    return PerchLike(num_classes)


def gem_classifier(num_classes: int, in_chans: int = 1) -> nn.Module:
    return GeMClassifier(num_classes, in_chans)


def sed(num_classes: int) -> nn.Module:
    return SEDNet(num_classes)


def repeat_channels(num_classes: int) -> nn.Module:
    return RepeatChannels(num_classes)


def shift_input(num_classes: int) -> nn.Module:
    return ShiftInput(num_classes)


def timm_under_backbone(num_classes: int) -> nn.Module:
    """A plain timm classifier kept as `self.backbone`: its checkpoint keys start with it."""
    wrapper = nn.Module()
    wrapper.backbone = timm.create_model(
        ARCH, pretrained=False, in_chans=1, num_classes=num_classes
    )
    return wrapper


def spread(
    model: nn.Module,
    seed: int,
    heads: tuple[nn.Module, ...],
    inputs: tuple[torch.Tensor, ...],
    gain: float = 2.0,
) -> nn.Module:
    """BatchNorm statistics measured on `inputs` (as training leaves them), then each head set,
    seeded, so that its outputs on `inputs` spread by about `gain` around zero. A fresh net
    scores every window nearly alike, and parity on near-constant scores would prove nothing."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches seen: here, one
    with torch.no_grad():
        model.train()(*inputs)
    seen: dict[nn.Module, torch.Tensor] = {}
    hooks = [
        h.register_forward_pre_hook(lambda m, args: seen.setdefault(m, args[0].detach()))
        for h in heads
    ]
    with torch.no_grad():
        model.eval()(*inputs)
    for hook in hooks:
        hook.remove()
    with torch.no_grad():
        for head in heads:
            x = seen[head]
            if x.ndim == 3:  # a Conv1d head over (batch, features, frames)
                x = x.transpose(1, 2).reshape(-1, x.shape[1])
            # One scale for all features (not one per feature): a feature that hardly varies on
            # `inputs` must not get a huge weight, or the exporter's noise probe overflows it.
            mean = x.mean(dim=0)
            scale = gain / (float((x - mean).std()) * x.shape[1] ** 0.5 + 1e-6)
            weight = torch.randn(head.weight.shape[0], x.shape[1]) * scale
            head.weight.copy_(weight.view_as(head.weight))
            head.bias.copy_(-(weight @ mean))
    return model.eval()
