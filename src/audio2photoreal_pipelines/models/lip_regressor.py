"""Frozen audio -> lip-vertex regressor for the face model's optional lip condition (§2.5).

Upstream's `Audio2LipRegressionTransformer`: wav2vec 1.0 large (feature extractor + conv
aggregator, frozen) on channel 0, then a non-causal `RegressionTransformer` (2 pre-norm encoder
layers over the audio, 4 pre-norm decoder layers whose queries are zeros + sinusoidal positions
at 30 fps), then Linear -> 338 x 3 lip vertices, run on 120-frame (4 s) chunks.
`load_lip_regressor` reads upstream's checkpoint (`assets/iter-0200000.pt`, key
`model_state_dict`) without fairseq; CHECKPOINT_LAYOUT states which checkpoint key feeds which
of our parameters. The face denoiser takes the output as cond["lip_features"] (B, T, 1014).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torchaudio
from einops import rearrange
from torch import Tensor, nn

from audio2photoreal_pipelines.models.audio import VqWav2VecFeatures
from audio2photoreal_pipelines.units import FPS, SAMPLE_RATE

WAV2VEC_RATE = 16_000
LEFT_PAD_SAMPLES = 320  # zeros before the 16 kHz audio, as upstream's Wav2VecEncoder
# fairseq's wav2vec large (examples/wav2vec README): (dim, kernel, stride) per conv layer.
WAV2VEC_LARGE_FEATURE_LAYERS = ((512, 10, 5), (512, 8, 4)) + ((512, 4, 2),) * 3 + ((512, 1, 1),) * 2
WAV2VEC_LARGE_AGGREGATOR_LAYERS = tuple((512, k, 1) for k in range(2, 14))

# Our parameter-name prefix -> the checkpoint key prefix that feeds it. Checkpoint keys outside
# these prefixes (wav2vec's prediction head, positional-encoding buffers) are not used.
CHECKPOINT_LAYOUT = {
    "audio_encoder.feature_extractor.": "audio_encoder.wav2vec_model.feature_extractor.",
    "audio_encoder.feature_aggregator.": "audio_encoder.wav2vec_model.feature_aggregator.",
    "regression_model.": "regression_model.",
    "project_output.": "project_output.",
}


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> Tensor:
    """Interleaved sin/cos positional encoding (length, dim): even dims sin, odd dims cos."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe


class Wav2VecAggregator(nn.Module):
    """wav2vec 1.0 conv aggregator: causal replication-padded convs, GroupNorm, ReLU, skips."""

    def __init__(
        self, in_dim: int, layers: Sequence[tuple[int, int, int]], *, residual_scale: float = 0.5
    ) -> None:
        super().__init__()
        blocks, projections = [], {}
        for index, (dim, kernel, stride) in enumerate(layers):
            if dim != in_dim:
                projections[str(index)] = nn.Conv1d(in_dim, dim, 1, bias=False)
            # Module indices 1 (conv) and 3 (norm) match fairseq's state-dict keys.
            blocks.append(
                nn.Sequential(
                    nn.ReplicationPad1d((kernel - 1, 0)),
                    nn.Conv1d(in_dim, dim, kernel, stride=stride),
                    nn.Dropout(0.0),
                    nn.GroupNorm(1, dim),
                    nn.ReLU(),
                )
            )
            in_dim = dim
        self.conv_layers = nn.ModuleList(blocks)
        self.residual_proj = nn.ModuleDict(projections)
        self.residual_scale = math.sqrt(residual_scale)  # fairseq scales by sqrt(value)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, dim, T)."""
        for index, block in enumerate(self.conv_layers):
            residual = x
            if str(index) in self.residual_proj:
                residual = self.residual_proj[str(index)](residual)
            x = (block(x) + residual) * self.residual_scale
        return x


class Wav2VecLargeEncoder(nn.Module):
    """Channel-0 waveform at 48 kHz (B, N) -> wav2vec large context features (B, Ta, dim)."""

    def __init__(
        self,
        *,
        feature_layers: Sequence[tuple[int, int, int]],
        aggregator_layers: Sequence[tuple[int, int, int]],
        sample_rate: int,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.feature_extractor = VqWav2VecFeatures(
            conv_layers=feature_layers, log_compression=True, sample_rate=WAV2VEC_RATE
        )
        self.feature_aggregator = Wav2VecAggregator(feature_layers[-1][0], aggregator_layers)

    def forward(self, waveform: Tensor) -> Tensor:
        audio = torchaudio.functional.resample(waveform, self.sample_rate, WAV2VEC_RATE)
        audio = nn.functional.pad(audio, (LEFT_PAD_SAMPLES, 0))
        features = self.feature_extractor(audio[..., None])  # (B, Ta, dim)
        context = self.feature_aggregator(rearrange(features, "b t d -> b d t"))
        return rearrange(context, "b d t -> b t d")


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.self_attn(x, x, x, need_weights=False)[0])


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, cond_dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(
            dim, heads, dropout=dropout, batch_first=True, kdim=cond_dim, vdim=cond_dim
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.dropout(self.cross_attn(x, cond, cond, need_weights=False)[0])


class _FeedForward(nn.Module):
    def __init__(self, dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = _SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.feedforward = _FeedForward(dim, ff_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x))
        return x + self.feedforward(self.norm2(x))


class _DecoderLayer(nn.Module):
    def __init__(self, dim: int, cond_dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = _SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = _CrossAttention(dim, cond_dim, heads, dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.feedforward = _FeedForward(dim, ff_dim, dropout)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross_attn(self.norm2(x), cond)
        return x + self.feedforward(self.norm3(x))


class RegressionTransformer(nn.Module):
    """Non-causal encoder-decoder: audio (B, Ta, cond_dim) -> frame features (B, T, dim)."""

    def __init__(
        self,
        *,
        dim: int,
        cond_dim: int,
        heads: int,
        ff_dim: int,
        dropout: float,
        encoder_layers: int,
        decoder_layers: int,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.transformer_encoder = nn.ModuleList(
            _EncoderLayer(cond_dim, heads, ff_dim, dropout) for _ in range(encoder_layers)
        )
        self.transformer_decoder = nn.ModuleList(
            _DecoderLayer(dim, cond_dim, heads, ff_dim, dropout) for _ in range(decoder_layers)
        )

    def forward(self, cond: Tensor, frames: int) -> Tensor:
        cond = cond + sinusoidal_positions(cond.shape[1], cond.shape[2], cond.device)
        x = sinusoidal_positions(frames, self.dim, cond.device).expand(cond.shape[0], -1, -1)
        for layer in self.transformer_encoder:
            cond = layer(cond)
        for layer in self.transformer_decoder:
            x = layer(x, cond)
        return x


class LipRegressor(nn.Module):
    """Frozen: normalised waveform (B, N, C) at 48 kHz -> lip vertices (B, N // 1600, V x 3).

    Uses channel 0 (the person) only, in chunks of `chunk_frames` frames, always in eval mode.
    """

    def __init__(
        self,
        *,
        n_vertices: int = 338,
        dim: int = 512,
        heads: int = 4,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        encoder_layers: int = 2,
        decoder_layers: int = 4,
        feature_layers: Sequence[tuple[int, int, int]] = WAV2VEC_LARGE_FEATURE_LAYERS,
        aggregator_layers: Sequence[tuple[int, int, int]] = WAV2VEC_LARGE_AGGREGATOR_LAYERS,
        chunk_frames: int = 120,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__()
        self.chunk_frames = chunk_frames
        self.samples_per_frame = sample_rate // FPS
        self.audio_encoder = Wav2VecLargeEncoder(
            feature_layers=feature_layers,
            aggregator_layers=aggregator_layers,
            sample_rate=sample_rate,
        )
        self.regression_model = RegressionTransformer(
            dim=dim,
            cond_dim=aggregator_layers[-1][0],
            heads=heads,
            ff_dim=ff_dim,
            dropout=dropout,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
        )
        self.project_output = nn.Linear(dim, n_vertices * 3)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LipRegressor:
        """Stay in eval mode: the regressor is frozen."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, waveform: Tensor) -> Tensor:
        """(B, N, C) waveform -> (B, T, V x 3) lip vertices at 30 fps, T = N // 1600."""
        frames = waveform.shape[1] // self.samples_per_frame
        audio = waveform[:, : frames * self.samples_per_frame, 0]
        chunks = []
        for start in range(0, frames, self.chunk_frames):
            length = min(self.chunk_frames, frames - start)
            piece = audio[
                :, start * self.samples_per_frame : (start + length) * self.samples_per_frame
            ]
            hidden = self.regression_model(self.audio_encoder(piece), length)
            chunks.append(self.project_output(hidden))
        return torch.cat(chunks, dim=1)


def checkpoint_key(name: str) -> str:
    """The checkpoint key that feeds our parameter `name` (CHECKPOINT_LAYOUT)."""
    for ours, theirs in CHECKPOINT_LAYOUT.items():
        if name.startswith(ours):
            return theirs + name[len(ours) :]
    raise KeyError(f"{name} is not covered by CHECKPOINT_LAYOUT")


def load_lip_regressor(path: str | Path, **kwargs) -> LipRegressor:
    """LipRegressor (constructor kwargs) with weights from upstream's `model_state_dict`."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise ValueError(f"{path}: cannot read the lip regressor checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state_dict"), dict):
        raise ValueError(f"{path}: no 'model_state_dict' dict in the lip regressor checkpoint")
    state = checkpoint["model_state_dict"]
    model = LipRegressor(**kwargs)
    expected = model.state_dict()
    missing = [checkpoint_key(name) for name in expected if checkpoint_key(name) not in state]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{path}: {len(missing)} lip regressor key(s) missing: {shown}")
    weights = {}
    for name, tensor in expected.items():
        value = state[checkpoint_key(name)]
        if value.shape != tensor.shape:
            raise ValueError(
                f"{path}: '{checkpoint_key(name)}' has shape {tuple(value.shape)}, expected "
                f"{tuple(tensor.shape)}"
            )
        weights[name] = value
    model.load_state_dict(weights)
    return model
