"""Guide transformer (docs/upstream.md §3(d)): audio -> residual VQ tokens of 1 fps keyframe poses.

Tokens (B, K, Q) are flattened time-major ([k0q0, k0q1, ..., k1q0, ...]) and predicted
autoregressively with teacher forcing (input = [START] + targets[:-1]). One embedding table of
codebook_size + 1 rows (the last is START) is shared by all residual levels, as upstream.

Positions (frames, on the audio tokens' time axis): the input at flat index i = k·Q + q sits at
the time of the token it predicts, k·30 + q·level_spacing. Audio tokens are pooled to the motion
frame rate and sit at frames 0..T-1, so cross-attention sees keyframe and audio times aligned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from audio2photoreal_pipelines.models.audio import AudioEncoder
from audio2photoreal_pipelines.models.transformer import FiLMTransformerDecoder, Memory
from audio2photoreal_pipelines.units import AUDIO_FEATURE_RATE, FPS, KEYFRAME_STRIDE


def _device_of(generator: torch.Generator | None, like: Tensor) -> torch.device:
    """Where random draws happen: the generator's device, else the tensor's."""
    return like.device if generator is None else generator.device


def nucleus_filter(
    logits: Tensor, *, top_p: float = 1.0, top_k: int | None = None, temperature: float = 1.0
) -> Tensor:
    """Temperature, then top-k, then top-p on logits (..., V): −inf outside the kept set.

    The nucleus is the smallest set of most likely tokens whose probability sums to ≥ top_p
    (the token that crosses top_p is kept); the most likely token is always kept.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


class GuideTransformer(nn.Module):
    """Audio-conditioned autoregressive transformer over residual VQ tokens of keyframes."""

    def __init__(
        self,
        *,
        audio_dim: int,
        codebook_size: int = 1024,
        num_quantizers: int = 4,
        dim: int = 64,
        depth: int = 6,
        heads: int = 4,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        level_spacing: float = 1.0,
        level_embedding: bool = False,
        rotary_theta: float = 10000.0,
        audio_encoder: Mapping[str, Any] | None = None,
        keyframe_stride: int = KEYFRAME_STRIDE,
    ) -> None:
        super().__init__()
        if not 0 <= level_spacing * (num_quantizers - 1) < keyframe_stride:
            raise ValueError(f"level_spacing {level_spacing} must keep levels inside a keyframe")
        # Stored with the model: sampling checks that the VQ, guide and body agree on it.
        self.keyframe_stride = keyframe_stride
        self.codebook_size = codebook_size
        self.num_quantizers = num_quantizers
        self.level_spacing = level_spacing
        self.audio_encoder = AudioEncoder(audio_dim, dim, **dict(audio_encoder or {}))
        # Learned null condition (CFG dropout), broadcast over time so any length works.
        self.null_audio = nn.Parameter(torch.randn(1, 1, dim))
        self.null_cond = nn.Parameter(torch.randn(1, dim))
        self.cond_mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim)
        )
        self.memory_norm = nn.LayerNorm(dim)
        self.token_embedding = nn.Embedding(codebook_size + 1, dim)  # last row: START
        # Optional (upstream has none): tells each input which residual level it predicts.
        self.level_embedding = nn.Embedding(num_quantizers, dim) if level_embedding else None
        self.decoder = FiLMTransformerDecoder(
            dim=dim,
            depth=depth,
            heads=heads,
            ff_dim=ff_dim,
            dropout=dropout,
            num_memories=1,
            causal=True,
            rotary_theta=rotary_theta,
        )
        self.head = nn.Linear(dim, codebook_size)

    @property
    def start_token(self) -> int:
        """Index of the START token in the embedding table."""
        return self.codebook_size

    def token_positions(self, num_tokens: int, device: torch.device | None = None) -> Tensor:
        """Frame times (N,) of flat token indices i = k·Q + q: k·30 + q·level_spacing."""
        index = torch.arange(num_tokens, device=device)
        keyframe, level = index // self.num_quantizers, index % self.num_quantizers
        return keyframe * float(self.keyframe_stride) + level * self.level_spacing

    def encode_audio(
        self,
        audio_features: Tensor,
        *,
        frame_mask: Tensor | None = None,
        drop: Tensor | None = None,
    ) -> tuple[Memory, Tensor]:
        """Features (B, Ta, C) -> memory at the frame rate and FiLM vector (B, dim).

        frame_mask (B, T): valid motion frames (its length sets T; else T = round(Ta·30/100)).
        drop (B,) bool: samples whose audio is replaced by the learned null condition.
        """
        num_frames = (
            frame_mask.shape[1]
            if frame_mask is not None
            else round(audio_features.shape[1] * FPS / AUDIO_FEATURE_RATE)
        )
        tokens = self.audio_encoder(audio_features, num_frames, frame_mask)
        if frame_mask is None:
            pooled = tokens.mean(dim=1)
        else:
            weights = frame_mask[..., None].to(tokens.dtype)
            pooled = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)
        cond = self.cond_mlp(pooled)
        if drop is not None:
            tokens = torch.where(drop[:, None, None], self.null_audio.to(tokens.dtype), tokens)
            cond = torch.where(drop[:, None], self.null_cond.to(cond.dtype), cond)
        positions = torch.arange(num_frames, device=tokens.device, dtype=torch.float32)
        return Memory(self.memory_norm(tokens), positions, frame_mask), cond

    def embed(self, inputs: Tensor, start: int = 0) -> Tensor:
        """Input token ids (B, N) at flat indices start..start+N-1 -> embeddings (B, N, dim)."""
        x = self.token_embedding(inputs)
        if self.level_embedding is not None:
            levels = torch.arange(start, start + inputs.shape[1], device=inputs.device)
            x = x + self.level_embedding(levels % self.num_quantizers)
        return x

    def forward(
        self,
        tokens: Tensor,
        audio_features: Tensor,
        *,
        frame_mask: Tensor | None = None,
        cond_drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Teacher-forced logits (B, K·Q, V) for tokens (B, K, Q) given features (B, Ta, C)."""
        batch = tokens.shape[0]
        drop = None
        if cond_drop_prob > 0:
            draws = torch.rand(batch, generator=generator, device=_device_of(generator, tokens))
            drop = draws.to(tokens.device) < cond_drop_prob
        memory, cond = self.encode_audio(audio_features, frame_mask=frame_mask, drop=drop)
        targets = rearrange(tokens, "b k q -> b (k q)")
        start = torch.full((batch, 1), self.start_token, dtype=targets.dtype, device=targets.device)
        inputs = torch.cat([start, targets[:, :-1]], dim=1)
        positions = self.token_positions(inputs.shape[1], inputs.device)
        hidden = self.decoder(self.embed(inputs), cond, positions=positions, memories=[memory])
        return self.head(hidden)

    @torch.no_grad()
    def generate(
        self,
        audio_features: Tensor,
        num_keyframes: int,
        *,
        frame_mask: Tensor | None = None,
        num_samples: int = 1,
        top_p: float = 0.94,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample tokens (B·num_samples, K, Q), clip-major: row b·num_samples + s is clip b.

        Audio is encoded and its memory attended once per clip for all its samples; with
        use_cache the memory keys/values are projected once and self-attention uses a KV cache.
        Runs in eval mode (dropout off) and restores the previous mode. No CFG, as upstream.
        """
        was_training = self.training
        self.eval()
        try:
            # One memory row per clip serves that clip's num_samples rows (see RotaryAttention).
            memory, cond = self.encode_audio(audio_features, frame_mask=frame_mask)
            cond = cond.repeat_interleave(num_samples, dim=0)
            total = num_keyframes * self.num_quantizers
            positions = self.token_positions(total, cond.device)
            batch = cond.shape[0]
            inputs = torch.full((batch, 1), self.start_token, dtype=torch.long, device=cond.device)
            memory_kv = self.decoder.project_memory(memory) if use_cache else None
            cache = self.decoder.new_self_cache() if use_cache else None
            for i in range(total):
                if use_cache:
                    hidden = self.decoder(
                        self.embed(inputs[:, -1:], start=i),
                        cond,
                        positions=positions[i : i + 1],
                        memories=[memory_kv],
                        self_cache=cache,
                    )
                else:
                    hidden = self.decoder(
                        self.embed(inputs),
                        cond,
                        positions=positions[: i + 1],
                        memories=[memory],
                    )
                logits = nucleus_filter(
                    self.head(hidden[:, -1]), top_p=top_p, top_k=top_k, temperature=temperature
                )
                probs = logits.float().softmax(dim=-1).to(_device_of(generator, logits))
                sample = torch.multinomial(probs, 1, generator=generator)
                inputs = torch.cat([inputs, sample.to(inputs.device)], dim=1)
        finally:
            self.train(was_training)
        return rearrange(inputs[:, 1:], "b (k q) -> b k q", q=self.num_quantizers)


def guide_loss(
    logits: Tensor,
    tokens: Tensor,
    mask: Tensor | None = None,
    *,
    label_smoothing: float = 0.1,
) -> tuple[Tensor, dict[str, float]]:
    """Label-smoothed cross-entropy over valid keyframes' tokens, and token accuracy.

    logits (B, K·Q, V), tokens (B, K, Q), mask (B, K) True on valid keyframes. Upstream masks
    nothing (its ignore_index never occurs); padded keyframes are excluded here.
    """
    targets = rearrange(tokens, "b k q -> b (k q)")
    losses = F.cross_entropy(
        rearrange(logits, "b n v -> b v n"),
        targets,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    correct = (logits.argmax(dim=-1) == targets).float()
    if mask is not None:
        valid = repeat(mask, "b k -> b (k q)", q=tokens.shape[2])
        loss, accuracy = losses[valid].mean(), correct[valid].mean()
    else:
        loss, accuracy = losses.mean(), correct.mean()
    return loss, {"token_accuracy": accuracy.item()}
