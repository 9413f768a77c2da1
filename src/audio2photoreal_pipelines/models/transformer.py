"""FiLM transformer decoder with rotary attention on explicit time positions, plus sampling caches.

Upstream (docs/upstream.md §3(a)) rotates the *inputs* of `nn.MultiheadAttention` by token index, so
100 Hz audio and 30 fps motion positions mean different times. Here queries and keys are rotated
after projection by caller-given float positions (angles from `RotaryEmbedding.forward(positions)`,
applied by `rotate`), so motion, audio and keyframe tokens can share one time axis (frames); see
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
from rotary_embedding_torch import RotaryEmbedding
from torch import Tensor, nn

from audio2photoreal_pipelines.models.dropout import Dropout


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


Modulation = tuple[Tensor, Tensor]  # a FiLM's gain (1 + scale) and shift, each (B, 1, D)


@dataclass
class SelfAttentionCache:
    """Rotated keys/values (B, H, S, Dh) per layer of the tokens decoded so far; grows in place.

    It also keeps each layer's FiLM modulations of the first step's cond, which decoding holds
    fixed: recomputing them took a quarter of a paper-size guide's decoding step.
    """

    keys: list[Tensor | None] = field(default_factory=list)
    values: list[Tensor | None] = field(default_factory=list)
    modulations: list[list[Modulation]] | None = None

    @property
    def length(self) -> int:
        """Number of cached tokens S."""
        return 0 if not self.keys or self.keys[0] is None else self.keys[0].shape[2]


def _as_batch_positions(positions: Tensor) -> Tensor:
    """Float positions (N,) or (B, N) -> (B or 1, N)."""
    positions = positions.float()
    return positions.unsqueeze(0) if positions.ndim == 1 else positions


def rotations_from_angles(angles: Tensor) -> Tensor:
    """Unit complex numbers (..., Dh / 2) from `RotaryEmbedding` angles (..., Dh).

    The library repeats each pair's angle (layout "(n r)", r = 2), so every other entry is kept.
    """
    angles = angles[..., ::2].float()
    return torch.polar(torch.ones_like(angles), angles)


def rotate(x: Tensor, rotations: Tensor) -> Tensor:
    """Rotate adjacent feature pairs of x (..., N, Dh) by rotations (..., N, Dh / 2), complex.

    The same result as `rotary_embedding_torch.apply_rotary_emb` (interleaved pairs), computed as
    one complex product: the library's cos/sin/rotate-half form took 7x as long on a paper-size
    body step's (4, 8, 600, 32) queries, forward and backward (2.7 ms against 0.4 ms on 2 CPU
    cores), about a tenth of the step.
    """
    pairs = x.float().unflatten(-1, (-1, 2))
    if pairs.storage_offset() % 2 or any(stride % 2 for stride in pairs.stride()[:-1]):
        pairs = pairs.contiguous()  # view_as_complex needs every pair at an even offset
    rotated = torch.view_as_real(torch.view_as_complex(pairs) * rotations).flatten(-2)
    return rotated.to(x.dtype)


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

    def project_kv(self, source: Tensor, rotations: Tensor) -> tuple[Tensor, Tensor]:
        """Keys (rotated, see `rotate`) and values (B, H, M, Dh) of tokens (B, M, D)."""
        k, v = rearrange(self.to_kv(source), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        return rotate(k, rotations), v

    def forward(
        self, x: Tensor, rotations: Tensor, k: Tensor, v: Tensor, mask: Tensor | None
    ) -> Tensor:
        """Attend queries from x (B·G, N, D), rotated, to k, v (B, H, M, Dh) -> (B·G, N, D).

        With G > 1, each key/value row serves G consecutive rows of x (the samples of one clip),
        whose queries are attended together as G·N queries: the same result as repeating the
        keys G times, without reading them G times.
        """
        group = x.shape[0] // k.shape[0]
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        q = rearrange(rotate(q, rotations), "(b g) h n d -> b h (g n) d", g=group)
        out = rearrange(_attend(q, k, v, mask), "b h (g n) d -> (b g) n (h d)", g=group)
        return self.to_out(out)


class FiLM(nn.Module):
    """Feature-wise modulation from a conditioning vector: (1 + scale)·h + shift."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.to_scale_shift = nn.Sequential(nn.Mish(), nn.Linear(dim, 2 * dim))

    def modulation(self, cond: Tensor) -> Modulation:
        """Gain 1 + scale and shift (B, 1, D) from cond (B, D)."""
        scale, shift = rearrange(self.to_scale_shift(cond), "b (two d) -> two b 1 d", two=2)
        return 1 + scale, shift

    def forward(self, h: Tensor, modulation: Modulation) -> Tensor:
        """Modulate h (B, N, D) by a `modulation` of cond, broadcast over time."""
        gain, shift = modulation
        return torch.addcmul(shift, h, gain)


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
            Dropout(dropout),
            nn.Linear(ff_dim, dim),
            Dropout(dropout),
        )
        self.ff_film = FiLM(dim)
        self.dropout = Dropout(dropout)

    def modulations(self, cond: Tensor) -> list[Modulation]:
        """The FiLM modulations of cond (B, D): self-attention, each cross-attention, FF."""
        films = [self.self_film, *self.cross_films, self.ff_film]
        return [film.modulation(cond) for film in films]

    def forward(
        self,
        x: Tensor,
        modulations: Sequence[Modulation],
        *,
        rotations: Tensor,
        self_mask: Tensor | None,
        memories: Sequence[tuple[Tensor, Tensor, Tensor | None]],
        past_kv: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, N, D), `modulations(cond)`, memories [(k, v, mask)] -> (x, self-attn k, v)."""
        self_mod, *cross_mods, ff_mod = modulations
        h = self.self_norm(x)
        k, v = self.self_attn.project_kv(h, rotations)
        if past_kv is not None:
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
        attended = self.self_attn(h, rotations, k, v, self_mask)
        x = x + self.self_film(self.dropout(attended), self_mod)
        for norm, attn, film, mod, (mk, mv, mmask) in zip(
            self.cross_norms, self.cross_attns, self.cross_films, cross_mods, memories, strict=True
        ):
            x = x + film(self.dropout(attn(norm(x), rotations, mk, mv, mmask)), mod)
        x = x + self.ff_film(self.ff(self.ff_norm(x)), ff_mod)
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

    def rotations(self, positions: Tensor) -> Tensor:
        """Rotary rotations (B|1, 1, N, Dh / 2), complex, for float positions (N,) or (B, N)."""
        angles = self.rotary(_as_batch_positions(positions))
        return rearrange(rotations_from_angles(angles), "b n d -> b 1 n d")

    def project_memory(self, memory: Memory, index: int = 0) -> MemoryKV:
        """Project memory slot `index` once into rotated keys/values for every layer."""
        rotations = self.rotations(memory.positions.to(memory.tokens.device))
        keys, values = [], []
        for layer in self.layers:
            k, v = layer.cross_attns[index].project_kv(memory.tokens, rotations)
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
        if self.causal and num_new > 1:  # one new token may see every key: nothing to mask
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
            cond must then be the same at every step (its FiLM modulations are cached).
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
        if self_cache is None:
            modulations = [layer.modulations(cond) for layer in self.layers]
        else:
            if self_cache.modulations is None:
                self_cache.modulations = [layer.modulations(cond) for layer in self.layers]
            modulations = self_cache.modulations
        rotations = self.rotations(positions.to(x.device))
        self_mask = self._self_mask(x.shape[1], num_past, mask, x.device)
        for index, (layer, layer_modulations) in enumerate(
            zip(self.layers, modulations, strict=True)
        ):
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
                x,
                layer_modulations,
                rotations=rotations,
                self_mask=self_mask,
                memories=memory_kv,
                past_kv=past,
            )
            if self_cache is not None:
                self_cache.keys[index], self_cache.values[index] = k, v
        return x
