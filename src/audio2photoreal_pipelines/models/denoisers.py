"""Face and body (pose) diffusion denoisers: FiLM transformers predicting x0 (§3(a), §3(b)).

Section numbers (§) refer to docs/upstream.md.

Differences from upstream, each for a reason:
- Audio features go through the learned `AudioEncoder` to the motion frame rate, and every
  token (motion, audio, keyframes, time) has a rotary position in frames on one time axis
  (docs/architecture.md: this is what lets small models learn the audio-motion alignment).
- Null (classifier-free) embeddings are (1, 1, D) and broadcast over time, so windows may have
  any length (upstream's (1, 1998, D) caps them at 600 frames, §10.7).
- The two diffusion time tokens sit at the window centre (T - 1) / 2, so no frame is more than
  T / 2 from them; the low rotary frequencies barely turn over that distance, so every frame can
  find them. Upstream appends them after the audio (index 1998, 1999 of the memory).
- Padded frames are masked out of self- and cross-attention and out of the pooled condition.
- The pose conv-head dropout follows train()/eval() (upstream ties it to a flag, §10.4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio2photoreal_pipelines.models.audio import AudioEncoder
from audio2photoreal_pipelines.models.diffusion.denoiser import ConditionalDenoiser, expand_drop
from audio2photoreal_pipelines.models.dropout import Dropout
from audio2photoreal_pipelines.models.transformer import (
    FiLMTransformerDecoder,
    Memory,
    MemoryKV,
    RotaryAttention,
)
from audio2photoreal_pipelines.models.wiener import WienerGain
from audio2photoreal_pipelines.units import BODY_DIM, FACE_DIM, KEYFRAME_STRIDE

NUM_TIME_TOKENS = 2


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding (B, dim) of integer diffusion steps t (B,), not rescaled."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1)
    )
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def xavier_init(module: nn.Module) -> None:
    """Xavier-normal weights and zero biases for every Linear and Conv1d (upstream init_weight)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv1d):
            nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """Mean of tokens (B, T, D) over valid frames mask (B, T) -> (B, D); zeros if none valid."""
    weights = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class RotaryEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with rotary self-attention (upstream's cond_encoder)."""

    def __init__(self, *, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = RotaryAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_dim),
            nn.GELU(),
            Dropout(dropout),
            nn.Linear(ff_dim, dim),
            Dropout(dropout),
        )
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, rotations: Tensor, mask: Tensor | None) -> Tensor:
        """x (B, T, D) with rotary rotations and key mask (B, 1, 1, T) -> (B, T, D)."""
        h = self.attn_norm(x)
        k, v = self.attn.project_kv(h, rotations)
        x = x + self.dropout(self.attn(h, rotations, k, v, mask))
        return x + self.ff(self.ff_norm(x))


def interpolate_keyframes(
    keyframes: Tensor, keyframe_mask: Tensor, frames: int, stride: int
) -> Tensor:
    """Keyframes (B, K, F) at frames 0, stride, 2·stride, ... -> linear track (B, frames, F).

    Between two valid keyframes the track is their linear interpolation; after the last valid
    one (or where none is valid: zeros) it holds that keyframe.
    """
    position = torch.arange(frames, device=keyframes.device, dtype=keyframes.dtype) / stride
    last = (keyframe_mask.long().sum(dim=1) - 1).clamp(min=0)[:, None]  # (B, 1)
    left = position.floor().long()[None].clamp(max=keyframes.shape[1] - 1)
    left = torch.minimum(left, last)
    right = torch.minimum(left + 1, last)
    weight = (position[None] - left).clamp(0, 1)[..., None]  # (B, frames, 1)
    index = torch.stack([left, right]).expand(2, keyframes.shape[0], frames)
    pair = torch.gather(
        keyframes[None].expand(2, -1, -1, -1),
        2,
        index[..., None].expand(-1, -1, -1, keyframes.shape[-1]),
    )  # (2, B, frames, F): the keyframes left and right of each frame
    track = (1 - weight) * pair[0] + weight * pair[1]
    return track * keyframe_mask.any(dim=1)[:, None, None]


class CausalPoseConvHead(nn.Module):
    """Upstream's body output head: causal dilated Conv1d stack with residual averages (§3(b))."""

    def __init__(self, channels: int, *, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        specs = [(channels, hidden, 1), (hidden, channels, 2), (channels, channels, 3)]
        specs += [(channels, channels, d) for d in (1, 2, 3)]
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, 3, dilation=d) for c_in, c_out, d in specs
        )
        self.left_pad = sum(2 * d for _, _, d in specs)  # 24: output length = input length
        self.act = nn.LeakyReLU(0.2)
        self.dropout = Dropout(dropout)  # follows train()/eval(), unlike upstream
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, C) -> (B, T, C); frame t sees frames t - 24 ... t only."""
        h = F.pad(rearrange(x, "b t c -> b c t"), (self.left_pad, 0))
        for conv in self.convs:
            y = self.dropout(self.act(conv(h)))
            if y.shape[1] == h.shape[1]:
                # Causal alignment: output j of a valid conv sits at input j + shrink.
                y = (h[..., h.shape[-1] - y.shape[-1] :] + y) / 2
            h = y
        return rearrange(self.out(h), "b c t -> b t c")


@dataclass
class DenoiserContext:
    """Step-independent part of a denoiser pass, built once per clip by `encode_condition`."""

    cond_hidden: Tensor  # (B, D) pooled condition, added to the FiLM vector
    audio: MemoryKV  # per-layer K/V of the audio tokens (time tokens are appended per step)
    guide: MemoryKV | None  # per-layer K/V of the keyframe tokens (pose only)
    length_mask: Tensor  # (B, T) True on valid frames
    frame_tokens: Tensor | None = None  # (B, T, D) condition added to the motion tokens


class _FiLMDenoiser(ConditionalDenoiser):
    """Shared body of the face and pose denoisers; subclasses add their condition paths."""

    def __init__(
        self,
        *,
        nfeats: int,
        dim: int,
        depth: int,
        heads: int,
        ff_dim: int,
        dropout: float,
        audio_feature_dim: int,
        audio_dim: int | None,
        audio_encoder: Mapping[str, Any] | None,
        num_memories: int,
        audio_to_tokens: bool = False,
    ) -> None:
        super().__init__()
        self.nfeats, self.dim = nfeats, dim
        audio_dim = audio_dim or dim
        self.input_proj = nn.Linear(nfeats, dim)
        self.time_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.Mish())
        self.to_time_cond = nn.Linear(4 * dim, dim)
        self.to_time_tokens = nn.Linear(4 * dim, NUM_TIME_TOKENS * dim)
        self.audio_encoder = AudioEncoder(audio_feature_dim, audio_dim, **(audio_encoder or {}))
        self.cond_proj = nn.Linear(audio_dim, dim)
        self.null_cond_embed = nn.Parameter(torch.randn(1, 1, dim))
        self.null_cond_hidden = nn.Parameter(torch.randn(1, dim))
        self.cond_pool_mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim)
        )
        self.norm_cond = nn.LayerNorm(dim)
        # Optional: the frame-aligned audio tokens are also added to the motion tokens, so each
        # frame sees its own audio without having to find it by attention (docs/architecture.md).
        self.audio_token_proj = nn.Linear(dim, dim) if audio_to_tokens else None
        self.decoder = FiLMTransformerDecoder(
            dim=dim,
            depth=depth,
            heads=heads,
            ff_dim=ff_dim,
            dropout=dropout,
            num_memories=num_memories,
        )

    def _audio_tokens(self, cond: Mapping[str, Tensor], length_mask: Tensor) -> Tensor:
        """Frame-rate audio condition (B, T, audio_dim) before the projection."""
        return self.audio_encoder(cond["audio_features"], length_mask.shape[1], mask=length_mask)

    def _encode_tokens(self, tokens: Tensor, length_mask: Tensor) -> Tensor:
        """Hook for the face model's condition encoder; identity here."""
        return tokens

    def _audio_context(self, cond: Mapping[str, Tensor], drop_audio: Tensor) -> DenoiserContext:
        """Audio condition -> context with the pooled hidden, audio memory K/V and length mask."""
        length_mask = cond["length_mask"].bool()
        tokens = self._encode_tokens(
            self.cond_proj(self._audio_tokens(cond, length_mask)), length_mask
        )
        tokens = torch.where(drop_audio[:, None, None], self.null_cond_embed, tokens)
        hidden = self.cond_pool_mlp(masked_mean(tokens, length_mask))
        hidden = torch.where(drop_audio[:, None], self.null_cond_hidden, hidden)
        positions = torch.arange(length_mask.shape[1], device=tokens.device, dtype=torch.float32)
        memory = Memory(self.norm_cond(tokens), positions, mask=length_mask)
        frame_tokens = None
        if self.audio_token_proj is not None:
            frame_tokens = self.audio_token_proj(self.norm_cond(tokens))
        return DenoiserContext(
            cond_hidden=hidden,
            audio=self.decoder.project_memory(memory, 0),
            guide=None,
            length_mask=length_mask,
            frame_tokens=frame_tokens,
        )

    def denoise(self, x_t: Tensor, t: Tensor, ctx: DenoiserContext) -> Tensor:
        """x0 prediction (B, T, nfeats) from x_t (B, T, nfeats), steps t (B,) and the context."""
        frames = x_t.shape[1]
        if ctx.length_mask.shape[1] != frames:
            raise ValueError(f"x_t has {frames} frames, the condition {ctx.length_mask.shape[1]}")
        t_hidden = self.time_mlp(timestep_embedding(t, self.dim))
        film = self.to_time_cond(t_hidden) + ctx.cond_hidden
        time_tokens = rearrange(
            self.to_time_tokens(t_hidden), "b (n d) -> b n d", n=NUM_TIME_TOKENS
        )
        # LayerNorm is per token, so norm(concat(audio, time)) = concat(norm(audio), norm(time)).
        centre = torch.full((NUM_TIME_TOKENS,), (frames - 1) / 2, device=x_t.device)
        time_kv = self.decoder.project_memory(Memory(self.norm_cond(time_tokens), centre), 0)
        memories = [ctx.audio.cat(time_kv)] + ([ctx.guide] if ctx.guide is not None else [])
        positions = torch.arange(frames, device=x_t.device, dtype=torch.float32)
        tokens = self.input_proj(x_t)
        if ctx.frame_tokens is not None:
            tokens = tokens + ctx.frame_tokens
        h = self.decoder(
            tokens,
            film,
            positions=positions,
            memories=memories,
            mask=ctx.length_mask,
        )
        return self.head(h)


class FaceDenoiser(_FiLMDenoiser):
    """Face x0 denoiser (B, T, 256) conditioned on the audio, §3(a).

    Upstream also feeds 338 lip vertices from a frozen lip regressor that comes only as a
    download; this model is conditioned on the audio alone.
    """

    def __init__(
        self,
        *,
        nfeats: int = FACE_DIM,
        dim: int = 512,
        depth: int = 8,
        heads: int = 8,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        audio_feature_dim: int = 80,
        audio_dim: int | None = None,
        audio_encoder: Mapping[str, Any] | None = None,
        cond_encoder_layers: int = 2,
    ) -> None:
        super().__init__(
            nfeats=nfeats,
            dim=dim,
            depth=depth,
            heads=heads,
            ff_dim=ff_dim,
            dropout=dropout,
            audio_feature_dim=audio_feature_dim,
            audio_dim=audio_dim,
            audio_encoder=audio_encoder,
            num_memories=1,
        )
        self.cond_encoder = nn.ModuleList(
            RotaryEncoderLayer(dim=dim, heads=heads, ff_dim=ff_dim, dropout=dropout)
            for _ in range(cond_encoder_layers)
        )
        self.head = nn.Linear(dim, nfeats)
        for part in (self.decoder, self.cond_encoder, self.head):
            xavier_init(part)

    def _encode_tokens(self, tokens: Tensor, length_mask: Tensor) -> Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device, dtype=torch.float32)
        rotations = self.decoder.rotations(positions)
        key_mask = rearrange(length_mask, "b t -> b 1 1 t")
        for layer in self.cond_encoder:
            tokens = layer(tokens, rotations, key_mask)
        return tokens

    def encode_condition(self, cond: Mapping[str, Tensor], drop: Tensor) -> DenoiserContext:
        """Audio (+ lip) context; drop (B,) nulls the condition of those samples."""
        drop = expand_drop(drop, self.num_drop_groups)
        return self._audio_context(cond, drop[:, 0])


class PoseDenoiser(_FiLMDenoiser):
    """Body x0 denoiser (B, T, 104): audio + 1 fps guide poses, with a causal conv head, §3(b).

    Drop groups: column 0 nulls the audio, column 1 the guide poses (independent draws in
    training); a (B,) drop mask nulls both, as upstream's unconditional CFG pass does.
    """

    num_drop_groups = 2

    def __init__(
        self,
        *,
        nfeats: int = BODY_DIM,
        dim: int = 256,
        depth: int = 6,
        heads: int = 8,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        audio_feature_dim: int = 80,
        audio_dim: int | None = None,
        audio_encoder: Mapping[str, Any] | None = None,
        keyframe_stride: int = KEYFRAME_STRIDE,
        conv_hidden: int = 256,
        conv_dropout: float = 0.2,
        audio_to_tokens: bool = False,
        keyframe_track: bool = False,
    ) -> None:
        super().__init__(
            nfeats=nfeats,
            dim=dim,
            depth=depth,
            heads=heads,
            ff_dim=ff_dim,
            dropout=dropout,
            audio_feature_dim=audio_feature_dim,
            audio_dim=audio_dim,
            audio_encoder=audio_encoder,
            num_memories=2,
            audio_to_tokens=audio_to_tokens,
        )
        self.keyframe_stride = keyframe_stride
        self.keyframe_proj = nn.Linear(nfeats, dim)
        self.keyframe_norm = nn.LayerNorm(dim)
        self.null_pose_embed = nn.Parameter(torch.randn(1, 1, dim))
        # Optional: the guide poses interpolated to every frame are added to the motion tokens,
        # so following them needs no attention to learn (upstream only cross-attends to them).
        self.track_proj = nn.Linear(nfeats, dim) if keyframe_track else None
        self.null_track = nn.Parameter(torch.zeros(1, 1, dim)) if keyframe_track else None
        self.head = nn.Sequential(
            nn.Linear(dim, nfeats),
            CausalPoseConvHead(nfeats, hidden=conv_hidden, dropout=conv_dropout),
        )
        for part in (self.decoder, self.head):
            xavier_init(part)
        # Fitted after training (train_pose): passes on the detail x_t holds (models/wiener.py).
        self.wiener: WienerGain | None
        self.register_module("wiener", None)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._modules.setdefault("wiener", None)  # pickled before the gain existed

    def denoise(self, x_t: Tensor, t: Tensor, ctx: DenoiserContext) -> Tensor:
        """x0 prediction (B, T, 104), corrected by the fitted Wiener gain when there is one."""
        x0 = super().denoise(x_t, t, ctx)
        if self.wiener is None:
            return x0
        return self.wiener(x_t, t, x0, ctx.length_mask)

    def encode_condition(self, cond: Mapping[str, Tensor], drop: Tensor) -> DenoiserContext:
        """Audio and guide-pose context; drop (B,) or (B, 2) [audio, poses] nulls conditions."""
        drop = expand_drop(drop, self.num_drop_groups)
        ctx = self._audio_context(cond, drop[:, 0])
        keyframe_mask = cond["keyframe_mask"].bool()
        keyframes = cond["keyframes"] * keyframe_mask.unsqueeze(-1)  # zero beyond valid length
        tokens = self.keyframe_norm(self.keyframe_proj(keyframes))
        drop_pose = drop[:, 1]
        tokens = torch.where(drop_pose[:, None, None], self.null_pose_embed, tokens)
        positions = torch.arange(tokens.shape[1], device=tokens.device, dtype=torch.float32)
        # Null tokens carry no position-specific content, so all of them stay visible.
        mask = keyframe_mask | drop_pose[:, None]
        guide = Memory(tokens, positions * self.keyframe_stride, mask=mask)
        ctx.guide = self.decoder.project_memory(guide, 1)
        if self.track_proj is not None:
            frames = ctx.length_mask.shape[1]
            track = self.track_proj(
                interpolate_keyframes(keyframes, keyframe_mask, frames, self.keyframe_stride)
            )
            track = torch.where(drop_pose[:, None, None], self.null_track, track)
            ctx.frame_tokens = track if ctx.frame_tokens is None else ctx.frame_tokens + track
        return ctx
