"""FiLM transformer decoder with rotary attention on explicit time positions, plus sampling caches.

Upstream (docs/upstream.md §3(a)) rotates the *inputs* of `nn.MultiheadAttention` by token index, so
100 Hz audio and 30 fps motion positions mean different times. Here queries and keys are rotated
after projection by caller-given float positions (`RotaryEmbedding.forward(positions)` then
`apply_rotary_emb`), so motion, audio and keyframe tokens can share one time axis (frames); see
docs/architecture.md. Attention runs in `F.scaled_dot_product_attention`.

Caches for sampling:
- `MemoryKV`: a memory projected once into rotated per-layer keys/values; a diffusion sampler
  reuses it every step and appends its few step-dependent tokens with `MemoryKV.cat`.
- `SelfAttentionCache`: rotated keys/values of already-decoded tokens for causal decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from rotary_embedding_torch import RotaryEmbedding, apply_rotary_emb
from torch import Tensor, nn


@dataclass
class Memory:
    """Cross-attention memory: tokens (B, M, D), float positions (M,) or (B, M), mask (B, M)."""

    tokens: Tensor
    positions: Tensor
    mask: Tensor | None = None  # True = valid token; None = all valid


@dataclass
class MemoryKV:
    """A memory projected once: rotated keys[l], values[l] (B, H, M, Dh) for every layer l."""

    keys: list[Tensor]
    values: list[Tensor]
    mask: Tensor | None = None  # (B, M) True = valid

    @property
    def length(self) -> int:
        """Number of memory tokens M."""
        return self.keys[0].shape[2]

    def full_mask(self) -> Tensor:
        """The validity mask (B, M), all True when none was given."""
        if self.mask is not None:
            return self.mask
        batch = self.keys[0].shape[0]
        return torch.ones(batch, self.length, dtype=torch.bool, device=self.keys[0].device)

    def cat(self, other: MemoryKV) -> MemoryKV:
        """Append `other`'s tokens after these (e.g. the per-step diffusion time tokens)."""
        mask = None
        if self.mask is not None or other.mask is not None:
            mask = torch.cat([self.full_mask(), other.full_mask()], dim=1)
        return MemoryKV(
            keys=[torch.cat(pair, dim=2) for pair in zip(self.keys, other.keys, strict=True)],
            values=[torch.cat(pair, dim=2) for pair in zip(self.values, other.values, strict=True)],
            mask=mask,
        )


@dataclass
class SelfAttentionCache:
    """Rotated keys/values (B, H, S, Dh) per layer of the tokens decoded so far; grows in place."""

    keys: list[Tensor | None] = field(default_factory=list)
    values: list[Tensor | None] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of cached tokens S."""
        return 0 if not self.keys or self.keys[0] is None else self.keys[0].shape[2]


def _as_batch_positions(positions: Tensor) -> Tensor:
    """Float positions (N,) or (B, N) -> (B or 1, N)."""
    positions = positions.float()
    return positions.unsqueeze(0) if positions.ndim == 1 else positions


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """SDPA with a boolean mask (B|1, 1, Nq, Nk), True = attend; rows with no key give zeros."""
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v)
    # A fully masked row would give NaN from the softmax; let it attend anywhere, then zero it.
    has_key = mask.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~has_key)
    return out * has_key


class RotaryAttention(nn.Module):
    """Multi-head attention with rotary positions applied to projected queries and keys.

    Attention weights are not dropped out (upstream drops them at 0.1): on the CPU, dropout
    inside attention forces SDPA's unfused kernel and a Bernoulli draw per weight, which took
    half of a guide training step. The layers' residual dropouts remain.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        # Same parameter count as nn.MultiheadAttention (in_proj 3·D² + 3·D, out_proj D² + D).
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.to_out = nn.Linear(dim, dim)

    def project_kv(self, source: Tensor, freqs: Tensor) -> tuple[Tensor, Tensor]:
        """Keys (rotated) and values (B, H, M, Dh) of source tokens (B, M, D)."""
        k, v = rearrange(self.to_kv(source), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        return apply_rotary_emb(freqs, k), v

    def forward(
        self, x: Tensor, freqs: Tensor, k: Tensor, v: Tensor, mask: Tensor | None
    ) -> Tensor:
        """Attend queries from x (B, N, D), rotated by freqs, to k, v (B, H, M, Dh) -> (B, N, D)."""
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        q = apply_rotary_emb(freqs, q)
        out = _attend(q, k, v, mask)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class FiLM(nn.Module):
    """Feature-wise modulation from a conditioning vector: (1 + scale)·h + shift."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.to_scale_shift = nn.Sequential(nn.Mish(), nn.Linear(dim, 2 * dim))

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        """Modulate h (B, N, D) by cond (B, D), broadcast over time."""
        scale, shift = rearrange(self.to_scale_shift(cond), "b (two d) -> two b 1 d", two=2)
        return (1 + scale) * h + shift


class FiLMTransformerDecoderLayer(nn.Module):
    """Pre-norm decoder layer: FiLM'd self-attention, cross-attention per memory, feed-forward."""

    def __init__(
        self, *, dim: int, heads: int, ff_dim: int, dropout: float, num_memories: int
    ) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = RotaryAttention(dim, heads)
        self.self_film = FiLM(dim)
        self.cross_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_memories))
        self.cross_attns = nn.ModuleList(RotaryAttention(dim, heads) for _ in range(num_memories))
        self.cross_films = nn.ModuleList(FiLM(dim) for _ in range(num_memories))
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, dim),
            nn.Dropout(dropout),
        )
        self.ff_film = FiLM(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        cond: Tensor,
        *,
        freqs: Tensor,
        self_mask: Tensor | None,
        memories: Sequence[tuple[Tensor, Tensor, Tensor | None]],
        past_kv: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, N, D), cond (B, D), memories [(k, v, mask)] -> (x, this call's self-attn k, v)."""
        h = self.self_norm(x)
        k, v = self.self_attn.project_kv(h, freqs)
        if past_kv is not None:
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
        x = x + self.self_film(self.dropout(self.self_attn(h, freqs, k, v, self_mask)), cond)
        for norm, attn, film, (mk, mv, mmask) in zip(
            self.cross_norms, self.cross_attns, self.cross_films, memories, strict=True
        ):
            x = x + film(self.dropout(attn(norm(x), freqs, mk, mv, mmask)), cond)
        x = x + self.ff_film(self.ff(self.ff_norm(x)), cond)
        return x, (k, v)


class FiLMTransformerDecoder(nn.Module):
    """A stack of FiLM decoder layers sharing one rotary embedding (dim = head dim)."""

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        heads: int,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        num_memories: int = 1,
        causal: bool = False,
        rotary_theta: float = 10000.0,
    ) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"dim {dim} must split into {heads} heads of even size for rotary")
        self.causal = causal
        self.num_memories = num_memories
        self.rotary = RotaryEmbedding(dim=dim // heads, theta=rotary_theta)
        self.layers = nn.ModuleList(
            FiLMTransformerDecoderLayer(
                dim=dim, heads=heads, ff_dim=ff_dim, dropout=dropout, num_memories=num_memories
            )
            for _ in range(depth)
        )

    def freqs(self, positions: Tensor) -> Tensor:
        """Rotary angles (B|1, 1, N, Dh) for float positions (N,) or (B, N)."""
        return rearrange(self.rotary(_as_batch_positions(positions)), "b n d -> b 1 n d")

    def project_memory(self, memory: Memory, index: int = 0) -> MemoryKV:
        """Project memory slot `index` once into rotated keys/values for every layer."""
        freqs = self.freqs(memory.positions.to(memory.tokens.device))
        keys, values = [], []
        for layer in self.layers:
            k, v = layer.cross_attns[index].project_kv(memory.tokens, freqs)
            keys.append(k)
            values.append(v)
        return MemoryKV(keys=keys, values=values, mask=memory.mask)

    def new_self_cache(self) -> SelfAttentionCache:
        """An empty causal self-attention cache for autoregressive decoding."""
        return SelfAttentionCache(keys=[None] * len(self.layers), values=[None] * len(self.layers))

    def _self_mask(
        self, num_new: int, num_past: int, mask: Tensor | None, device: torch.device
    ) -> Tensor | None:
        """Boolean (B|1, 1, N, S+N) mask from causality and the key padding mask (B, N)."""
        allowed = None
        if self.causal:
            q_index = torch.arange(num_new, device=device) + num_past
            k_index = torch.arange(num_past + num_new, device=device)
            allowed = rearrange(k_index, "k -> 1 1 1 k") <= rearrange(q_index, "q -> 1 1 q 1")
        if mask is not None:
            key_valid = rearrange(mask, "b k -> b 1 1 k")
            allowed = key_valid if allowed is None else allowed & key_valid
        return allowed

    def forward(
        self,
        x: Tensor,
        cond: Tensor,
        *,
        positions: Tensor,
        memories: Sequence[Memory | MemoryKV] = (),
        mask: Tensor | None = None,
        self_cache: SelfAttentionCache | None = None,
    ) -> Tensor:
        """Decode x (B, N, D) with FiLM vector cond (B, D) -> (B, N, D).

        positions: float times (N,) or (B, N) of x's tokens, on the memories' time axis.
        memories: one per cross-attention slot, raw (`Memory`) or projected (`MemoryKV`).
        mask: (B, N) True on valid tokens of x (key padding in self-attention).
        self_cache: causal decoding; x holds only the new tokens and the cache grows in place.
        """
        if len(memories) != self.num_memories:
            raise ValueError(f"expected {self.num_memories} memories, got {len(memories)}")
        if self_cache is not None:
            if not self.causal:
                raise ValueError("a self-attention cache needs causal=True")
            if mask is not None:
                raise ValueError("self_cache decoding takes no padding mask (all tokens are valid)")
            if not self_cache.keys:
                self_cache.keys = [None] * len(self.layers)
                self_cache.values = [None] * len(self.layers)
        projected = [
            m if isinstance(m, MemoryKV) else self.project_memory(m, index)
            for index, m in enumerate(memories)
        ]
        num_past = 0 if self_cache is None else self_cache.length
        freqs = self.freqs(positions.to(x.device))
        self_mask = self._self_mask(x.shape[1], num_past, mask, x.device)
        for index, layer in enumerate(self.layers):
            memory_kv = [
                (
                    m.keys[index],
                    m.values[index],
                    None if m.mask is None else rearrange(m.mask, "b m -> b 1 1 m"),
                )
                for m in projected
            ]
            past = None
            if self_cache is not None and self_cache.keys[index] is not None:
                past = (self_cache.keys[index], self_cache.values[index])
            x, (k, v) = layer(
                x, cond, freqs=freqs, self_mask=self_mask, memories=memory_kv, past_kv=past
            )
            if self_cache is not None:
                self_cache.keys[index], self_cache.values[index] = k, v
        return x
