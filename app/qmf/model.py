"""The QMF model: one encoder and classifier per modality, fused by energy confidence.

The architecture is described by a plain, JSON-serialisable config so that a model file carries
everything needed to rebuild it, and so that any number M >= 2 of modalities of any kind can be
combined without code changes.
"""

from __future__ import annotations

import torch
from torch import nn

from app.modalities import get_modality
from app.qmf.config import DEFAULT_ENCODER, ModalityConfig, ModelConfig
from app.qmf.fusion import FusionOutput, fuse_by_energy

__all__ = ["DEFAULT_ENCODER", "ConvEncoder", "ModalityBranch", "ModalityConfig", "ModelConfig", "QMFModel", "TemporalBlock",
           "TextEncoder", "build_encoder"]


class TemporalBlock(nn.Module):
    """Order over time on the last feature axis: ``x + conv(relu(conv(x)))`` on the frequency-averaged map.

    Global pooling alone sees which sounds occur, not in what order, so speech played backwards or cut
    into shuffled syllables pools to much the same features as a spoken word. This block compares each
    coarse time step with its neighbours before pooling. Its second convolution starts at zero, so a
    model given the block starts out computing exactly what it computed without it (fine-tuning an
    existing model with the block added begins from that model's behaviour).
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.mix = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.out = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, F, T] -> [B, C]
        line = x.mean(dim=2)
        return (line + self.out(torch.relu(self.mix(line)))).mean(dim=2)


class ConvEncoder(nn.Module):
    """A small 2-D CNN for images and spectrograms; global pooling makes it size-agnostic.

    ``temporal`` > 0 (a kernel size, odd) pools through a TemporalBlock over the last axis (time, for a
    spectrogram) instead of plain global average pooling.
    """

    def __init__(self, in_channels: int, channels: list[int], hidden: int, dropout: float, temporal: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, out in enumerate(channels):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = TemporalBlock(c, temporal) if temporal else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


class TextEncoder(nn.Module):
    """Bag of words: mean of token embeddings (padding ignored), then an MLP."""

    def __init__(self, vocab_size: int, embedding: int, hidden: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.head = nn.Sequential(nn.Linear(embedding, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.out_features = hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).float()
        summed = (self.embedding(tokens) * mask).sum(dim=1)
        mean = summed / mask.sum(dim=1).clamp(min=1.0)
        return self.head(mean)


def build_encoder(config: ModalityConfig) -> nn.Module:
    settings = config.encoder_settings()
    if config.kind in ("image", "audio"):
        in_channels = get_modality(config.kind, config.preprocessing).input_shape[0]  # what to_tensor makes
        return ConvEncoder(in_channels, list(settings["channels"]), int(settings["hidden"]), float(settings["dropout"]),
                           int(settings.get("temporal", 0)))
    if config.kind == "text":
        vocab_size = len(config.preprocessing.get("vocab", [])) + 2
        return TextEncoder(vocab_size, int(settings["embedding"]), int(settings["hidden"]), float(settings["dropout"]))
    raise ValueError(f"no encoder for modality kind {config.kind!r} (modality {config.name!r})")


class ModalityBranch(nn.Module):
    def __init__(self, config: ModalityConfig, n_classes: int):
        super().__init__()
        self.encoder = build_encoder(config)
        self.classifier = nn.Linear(self.encoder.out_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))


class QMFModel(nn.Module):
    """Per-modality branches whose logits are fused by their own energy confidence."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.branches = nn.ModuleDict({m.name: ModalityBranch(m, len(config.labels)) for m in config.modalities})

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.config.modalities]

    def forward(self, inputs: dict[str, torch.Tensor]) -> FusionOutput:
        missing = [n for n in self.modality_names if n not in inputs]
        if missing:
            raise KeyError(f"inputs missing for modalities {missing}")
        return self.fuse({n: self.branches[n](inputs[n]) for n in self.modality_names})

    def fuse(self, logits: dict[str, torch.Tensor]) -> FusionOutput:
        """Fuse per-modality logits with this model's own rule (scale, detached weights, weight floor)."""
        return fuse_by_energy(logits, self.config.confidence_scale, self.config.detach_weights, self.config.weight_floor)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
