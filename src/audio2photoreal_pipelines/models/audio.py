"""Audio front ends: log-mel features, the learned audio encoder and the vq-wav2vec extractor.

- `LogMelFeatures` (non-learned, the default): waveform (B, N, 2) at 48 kHz -> (B, Ta, 2·n_mels)
  at 100 Hz.
- `VqWav2VecFeatures` (frozen, optional): upstream's vq-wav2vec convolutional feature extractor
  (docs/upstream.md §2.4), built from a fairseq checkpoint without fairseq by `build_vq_wav2vec`
  (the checkpoint is read by datasets/fairseq_checkpoint.py).
  `make_feature_extractor` picks one of the two for ingest; both give Ta = N // 480 + 1 rows.
- `AudioEncoder` (learned): features (B, Ta, C) -> tokens (B, T, D) at the motion frame rate, so
  rotary positions of audio memory and motion mean the same time (docs/architecture.md).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio
from einops import rearrange
from torch import Tensor, nn

from audio2photoreal_pipelines.models.dropout import Dropout
from audio2photoreal_pipelines.units import SAMPLE_RATE

FEATURE_SAMPLE_RATE = 16_000
HOP_LENGTH = 160  # 10 ms at 16 kHz: features at 100 Hz
N_FFT = 400
LOG_OFFSET = 1e-5
# fairseq's vq-wav2vec feature extractor: (channels, kernel, stride) per conv layer.
VQ_WAV2VEC_CONV_LAYERS = ((512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2))


def log_mel_frames(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Log-mel frames Ta for N samples: ceil(N·16k/rate) // 160 + 1 (N // 480 + 1 at 48 kHz
    whenever N % 480 is not 478 or 479, e.g. for any whole number of 1600-sample frames)."""
    resampled = math.ceil(num_samples * FEATURE_SAMPLE_RATE / sample_rate)
    return resampled // HOP_LENGTH + 1


class LogMelFeatures(nn.Module):
    """Non-learned log-mel features: (B, N, C) waveform -> (B, Ta, C·n_mels), channel-major."""

    def __init__(self, *, n_mels: int = 40, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.resample = torchaudio.transforms.Resample(sample_rate, FEATURE_SAMPLE_RATE)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=FEATURE_SAMPLE_RATE,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            n_mels=n_mels,
            center=True,
        )

    def num_frames(self, num_samples: int) -> int:
        """Feature frames Ta for N samples (see `log_mel_frames`)."""
        return log_mel_frames(num_samples, self.sample_rate)

    def forward(self, waveform: Tensor) -> Tensor:
        """(B, N, C) normalised waveform -> (B, Ta, C·n_mels) log-mel, channel 0's bins first."""
        batch, num_samples, channels = waveform.shape
        # Reflect padding (center=True) needs more than n_fft / 2 samples at 16 kHz.
        if math.ceil(num_samples * FEATURE_SAMPLE_RATE / self.sample_rate) <= N_FFT // 2:
            raise ValueError(
                f"waveform of {num_samples} samples at {self.sample_rate} Hz is too short for "
                f"log-mel features (needs more than {N_FFT // 2} samples at 16 kHz)"
            )
        mono = rearrange(waveform, "b n c -> (b c) n")
        mel = self.mel(self.resample(mono))  # (B·C, n_mels, Ta)
        return rearrange(torch.log(mel + LOG_OFFSET), "(b c) m t -> b t (c m)", b=batch)


def feature_mask(frame_mask: Tensor, num_features: int) -> Tensor:
    """Motion-rate validity (B, T) -> feature-rate validity (B, Ta) by nearest-neighbour lookup."""
    resized = F.interpolate(frame_mask[:, None].float(), size=num_features, mode="nearest")
    return resized[:, 0] > 0.5


class AudioEncoder(nn.Module):
    """Learned audio encoder: features (B, Ta, C) -> (B, T, out_dim) at the motion frame rate.

    Input projection (LayerNorm + Linear, optional), Conv1d layers (each followed by the
    activation and dropout), an optional 1x1 conv, adaptive average pooling to T frames, and a
    Linear to out_dim. With `pool_first=True` the pooling to T frames comes before the
    convolutions, which then run at the motion frame rate: 100/30 times fewer positions, for the
    same receptive field in frames rather than in feature steps.

    With `input_proj=False, hidden_dim=1024, num_layers=12, kernel_size=3,
    dilations=(1, 2, 3), activation="leaky_relu", dropout=0.2, padding="valid",
    pointwise_out=True` the layer shapes are upstream's guide `pre_audio` stack
    (docs/upstream.md §3(d)).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden_dim: int | None = None,
        num_layers: int = 3,
        kernel_size: int = 5,
        dilations: Sequence[int] = (1,),
        activation: str = "gelu",
        dropout: float = 0.0,
        padding: str = "same",
        input_proj: bool = True,
        pointwise_out: bool = False,
        pool_first: bool = False,
    ) -> None:
        super().__init__()
        if pool_first and padding != "same":
            raise ValueError("pool_first needs padding='same' (the output must keep T frames)")
        self.pool_first = pool_first
        hidden_dim = hidden_dim or out_dim
        if activation not in ("gelu", "leaky_relu"):
            raise ValueError(f"activation must be 'gelu' or 'leaky_relu', got {activation!r}")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        if not input_proj and in_dim != hidden_dim:
            raise ValueError(
                f"input_proj=False needs in_dim == hidden_dim ({in_dim} != {hidden_dim})"
            )
        self.input_proj = (
            nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden_dim))
            if input_proj
            else nn.Identity()
        )
        dilations = [dilations[i % len(dilations)] for i in range(num_layers)]
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden_dim, hidden_dim, kernel_size, dilation=d, padding=padding)
            for d in dilations
        )
        self.shrink = 0 if padding == "same" else sum(d * (kernel_size - 1) for d in dilations)
        self.act = nn.GELU() if activation == "gelu" else nn.LeakyReLU(0.2)
        self.dropout = Dropout(dropout)
        self.pointwise = nn.Conv1d(hidden_dim, hidden_dim, 1) if pointwise_out else nn.Identity()
        self.out = nn.Linear(hidden_dim, out_dim)

    def forward(self, features: Tensor, num_frames: int, mask: Tensor | None = None) -> Tensor:
        """features (B, Ta, C) -> (B, num_frames, out_dim); mask (B, num_frames) True = valid."""
        if features.shape[1] <= self.shrink:
            raise ValueError(
                f"{features.shape[1]} audio feature frames are too few for unpadded convolutions "
                f"that drop {self.shrink} frames"
            )
        h = rearrange(self.input_proj(features), "b t c -> b c t")
        fmask = None
        if mask is not None:
            # Zero padded frames so they look like the convolutions' own zero padding.
            fmask = rearrange(feature_mask(mask, features.shape[1]), "b t -> b 1 t")
            h = h * fmask
        if self.pool_first:
            h = F.adaptive_avg_pool1d(h, num_frames)
            fmask = None if mask is None else rearrange(mask.to(h.dtype), "b t -> b 1 t")
            if fmask is not None:
                h = h * fmask
        for conv in self.convs:
            h = self.dropout(self.act(conv(h)))
            if fmask is not None and h.shape[-1] == fmask.shape[-1]:
                h = h * fmask
        h = F.adaptive_avg_pool1d(self.pointwise(h), num_frames)
        out = self.out(rearrange(h, "b c t -> b t c"))
        return out if mask is None else out * mask[..., None]


class _Fp32GroupNorm(nn.GroupNorm):
    """GroupNorm computed in float32 (fairseq's Fp32GroupNorm), output in the input dtype."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).type_as(x)


class VqWav2VecFeatures(nn.Module):
    """Frozen vq-wav2vec conv feature extractor: (B, N, C) waveform -> (B, Ta, C·512).

    Only fairseq's `feature_extractor` (no quantiser, no aggregator), as upstream uses it: each
    block is Conv1d (no bias) -> Dropout -> Fp32GroupNorm(1 group) -> activation, then optional
    skip connections and log compression log(|x| + 1). Channels are processed separately and
    concatenated channel-major: [self 512 | partner 512]. Always in eval mode.
    """

    def __init__(
        self,
        *,
        conv_layers: Sequence[tuple[int, int, int]] = VQ_WAV2VEC_CONV_LAYERS,
        log_compression: bool = True,
        skip_connections: bool = False,
        residual_scale: float = 0.5,
        affine_group_norm: bool = True,
        activation: str = "relu",
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        self.sample_rate = sample_rate
        self.log_compression = log_compression
        self.skip_connections = skip_connections
        self.residual_scale = math.sqrt(residual_scale)  # fairseq scales residuals by sqrt(value)
        self.resample = (
            torchaudio.transforms.Resample(sample_rate, FEATURE_SAMPLE_RATE)
            if sample_rate != FEATURE_SAMPLE_RATE
            else nn.Identity()
        )
        blocks, in_dim = [], 1
        for dim, kernel, stride in conv_layers:
            # Module indices 0 (conv) and 2 (norm) match fairseq's state-dict keys.
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(in_dim, dim, kernel, stride=stride, bias=False),
                    nn.Dropout(0.0),
                    _Fp32GroupNorm(1, dim, affine=affine_group_norm),
                    nn.ReLU() if activation == "relu" else nn.GELU(),
                )
            )
            in_dim = dim
        self.conv_layers = nn.ModuleList(blocks)
        self.feature_dim = in_dim
        self.receptive_field, self.hop = _receptive_field(conv_layers)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VqWav2VecFeatures:
        """Stay in eval mode: the extractor is frozen."""
        return super().train(False)

    def forward(self, waveform: Tensor) -> Tensor:
        """(B, N, C) waveform -> (B, Ta, C·feature_dim), Ta = (N16k − field) // hop + 1."""
        batch = waveform.shape[0]
        x = self.resample(rearrange(waveform, "b n c -> (b c) n"))
        if x.shape[-1] < self.receptive_field:
            raise ValueError(
                f"{x.shape[-1]} samples at 16 kHz are shorter than the vq-wav2vec receptive field "
                f"of {self.receptive_field}"
            )
        x = x[:, None]
        for block in self.conv_layers:
            residual = x
            x = block(x)
            if self.skip_connections and x.shape[1] == residual.shape[1]:
                residual = residual[..., :: residual.shape[2] // x.shape[2]][..., : x.shape[2]]
                x = (x + residual) * self.residual_scale
        if self.log_compression:
            x = torch.log(x.abs() + 1)
        return rearrange(x, "(b c) d t -> b t (c d)", b=batch)


class LogMelAligned(nn.Module):
    """A 100 Hz extractor's features on the log-mel frame grid: (B, N, C) -> (B, Ta, D).

    Ta = `log_mel_frames(N)`, so the cached features have the same rows whichever front end made
    them, and data/windows.py's slice [round(s·10/3), ...) means the same times for both; the
    models' feature widths are the only difference. vq-wav2vec frame j covers 16 kHz samples
    [160 j, 160 j + field), so its centre sits (field − 1) / 2 samples (≈ 1.45 frames) after the
    centre of log-mel frame j: rows are shifted by that offset, rounded, and the few rows at the
    ends (≈ 3 in all) repeat the edge frames instead of holding zeros that would read as a sound.
    """

    def __init__(self, extractor: VqWav2VecFeatures) -> None:
        super().__init__()
        if extractor.hop != HOP_LENGTH:
            raise ValueError(
                f"the vq-wav2vec extractor hops {extractor.hop} samples at 16 kHz; the feature "
                f"cache needs {HOP_LENGTH} (100 Hz)"
            )
        self.extractor = extractor
        self.offset = round((extractor.receptive_field - 1) / 2 / HOP_LENGTH)

    def forward(self, waveform: Tensor) -> Tensor:
        """(B, N, C) waveform -> (B, log_mel_frames(N), C·feature_dim)."""
        features = self.extractor(waveform)
        rows = log_mel_frames(waveform.shape[1], self.extractor.sample_rate)
        source = torch.arange(rows, device=features.device) - self.offset
        return features[:, source.clamp(0, features.shape[1] - 1)]


def _receptive_field(conv_layers: Sequence[tuple[int, int, int]]) -> tuple[int, int]:
    """Receptive field and hop, in input samples, of a stack of (dim, kernel, stride) convs."""
    field, hop = 1, 1
    for _, kernel, stride in conv_layers:
        field += (kernel - 1) * hop
        hop *= stride
    return field, hop


def build_vq_wav2vec(
    model_state: dict[str, Tensor],
    args: dict[str, Any],
    *,
    source: str,
    sample_rate: int = SAMPLE_RATE,
) -> VqWav2VecFeatures:
    """The frozen extractor from a fairseq vq-wav2vec checkpoint's contents, without fairseq.

    Takes `feature_extractor.conv_layers.{i}.{0|2}.{weight|bias}` from ``model_state`` and the
    extractor settings from ``args`` where present; other keys are ignored. ``source`` names the
    checkpoint in errors (datasets/fairseq_checkpoint.py reads it).
    """
    conv_layers = VQ_WAV2VEC_CONV_LAYERS
    if isinstance(args.get("conv_feature_layers"), str):
        conv_layers = tuple(tuple(layer) for layer in ast.literal_eval(args["conv_feature_layers"]))
    extractor = VqWav2VecFeatures(
        conv_layers=conv_layers,
        log_compression=bool(args.get("log_compression", True)),
        skip_connections=bool(args.get("skip_connections_feat", False)),
        residual_scale=float(args.get("residual_scale", 0.5)),
        affine_group_norm=not args.get("non_affine_group_norm", False),
        activation=str(args.get("activation", "relu")),
        sample_rate=sample_rate,
    )
    prefix = "feature_extractor.conv_layers."
    weights = {k[len(prefix) :]: v for k, v in model_state.items() if k.startswith(prefix)}
    expected = extractor.conv_layers.state_dict()
    missing = sorted(set(expected) - set(weights))
    unknown = sorted(set(weights) - set(expected))
    if missing or unknown:
        key, problem = (missing[0], "missing") if missing else (unknown[0], "unexpected")
        raise ValueError(
            f"{source}: {problem} key '{prefix}{key}' for the vq-wav2vec feature extractor "
            f"({len(missing)} missing, {len(unknown)} unexpected)"
        )
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{source}: '{prefix}{key}' has shape {tuple(value.shape)}, expected "
                f"{tuple(expected[key].shape)}"
            )
    extractor.conv_layers.load_state_dict(weights)
    return extractor


def feature_width(n_mels: int, vq_wav2vec_checkpoint: str | Path | None = None) -> int:
    """C, the width of the features ``make_feature_extractor`` gives with these settings."""
    per_channel = VQ_WAV2VEC_CONV_LAYERS[-1][0] if vq_wav2vec_checkpoint else n_mels
    return 2 * per_channel


def make_feature_extractor(
    *, n_mels: int = 40, vq_wav2vec: VqWav2VecFeatures | None = None
) -> nn.Module:
    """The non-learned front end: (B, N, 2) normalised waveform -> (B, Ta, C), Ta = N // 480 + 1.

    Log-mel (C = 2·n_mels) by default; given upstream's frozen vq-wav2vec (the catalog's
    ``vq_wav2vec``), its features (C = 2·512 = 1024, docs/upstream.md §2.4; n_mels is then
    unused). The models' audio input width (`audio_feature_dim`, the guide's `audio_dim`) must
    equal C. Its one-group GroupNorms
    normalise over the whole input, so features of a whole scene differ slightly from upstream's,
    computed per 20 s window.
    """
    if vq_wav2vec is None:
        return LogMelFeatures(n_mels=n_mels)
    return LogMelAligned(vq_wav2vec)
