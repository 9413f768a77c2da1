"""FiLM transformer decoder: shapes, causality, caches and rotary relative positions."""

from __future__ import annotations

import pytest
import torch
from rotary_embedding_torch import RotaryEmbedding, apply_rotary_emb

from audio2photoreal_pipelines.models.transformer import (
    FiLMTransformerDecoder,
    Memory,
    MemoryKV,
    rotate,
    rotations_from_angles,
)

DIM, HEADS = 32, 4


def make_decoder(*, num_memories: int = 1, causal: bool = False) -> FiLMTransformerDecoder:
    torch.manual_seed(0)
    return FiLMTransformerDecoder(
        dim=DIM, depth=2, heads=HEADS, ff_dim=64, num_memories=num_memories, causal=causal
    ).eval()


def memory(batch: int, length: int, *, seed: int, scale: float = 1.0) -> Memory:
    g = torch.Generator().manual_seed(seed)
    return Memory(
        tokens=torch.randn(batch, length, DIM, generator=g),
        positions=torch.arange(length, dtype=torch.float32) * scale,
    )


def inputs(batch: int = 2, length: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, length, DIM, generator=g)
    cond = torch.randn(batch, DIM, generator=g)
    return x, cond, torch.arange(length, dtype=torch.float32) * 3.0


def test_output_shape_with_two_memories():
    decoder = make_decoder(num_memories=2)
    x, cond, pos = inputs()
    out = decoder(x, cond, positions=pos, memories=[memory(2, 11, seed=2), memory(2, 3, seed=3)])
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_wrong_number_of_memories_is_rejected():
    decoder = make_decoder(num_memories=2)
    x, cond, pos = inputs()
    with pytest.raises(ValueError, match="expected 2 memories"):
        decoder(x, cond, positions=pos, memories=[memory(2, 11, seed=2)])


def test_causal_future_tokens_do_not_change_past_outputs():
    decoder = make_decoder(causal=True)
    x, cond, pos = inputs()
    mem = [memory(2, 9, seed=2)]
    changed = x.clone()
    changed[:, 4:] += torch.randn_like(changed[:, 4:])
    a = decoder(x, cond, positions=pos, memories=mem)
    b = decoder(changed, cond, positions=pos, memories=mem)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)


def test_non_causal_future_tokens_change_past_outputs():
    decoder = make_decoder(causal=False)
    x, cond, pos = inputs()
    mem = [memory(2, 9, seed=2)]
    changed = x.clone()
    changed[:, 4:] += torch.randn_like(changed[:, 4:])
    a = decoder(x, cond, positions=pos, memories=mem)
    b = decoder(changed, cond, positions=pos, memories=mem)
    assert not torch.allclose(a[:, :4], b[:, :4], atol=1e-4)


def test_padding_mask_hides_padded_tokens():
    decoder = make_decoder()
    x, cond, pos = inputs()
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[:, 5:] = False
    changed = x.clone()
    changed[:, 5:] = 100.0
    mem = [memory(2, 9, seed=2)]
    a = decoder(x, cond, positions=pos, memories=mem, mask=mask)
    b = decoder(changed, cond, positions=pos, memories=mem, mask=mask)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5)


def test_memory_mask_hides_masked_memory_tokens():
    decoder = make_decoder()
    x, cond, pos = inputs()
    mem = memory(2, 9, seed=2)
    mem.mask = torch.ones(2, 9, dtype=torch.bool)
    mem.mask[1, 6:] = False
    changed = Memory(mem.tokens.clone(), mem.positions, mem.mask)
    changed.tokens[1, 6:] = -50.0
    a = decoder(x, cond, positions=pos, memories=[mem])
    b = decoder(x, cond, positions=pos, memories=[changed])
    assert torch.allclose(a, b, atol=1e-5)


def test_fully_masked_memory_gives_finite_output():
    decoder = make_decoder()
    x, cond, pos = inputs()
    mem = memory(2, 4, seed=2)
    mem.mask = torch.zeros(2, 4, dtype=torch.bool)
    assert torch.isfinite(decoder(x, cond, positions=pos, memories=[mem])).all()


def test_cached_cross_attention_with_extra_tokens_matches_uncached():
    """Project the step-independent memory once, append per-step tokens: same output."""
    decoder = make_decoder(num_memories=2)
    x, cond, pos = inputs()
    audio, time_tokens, guide = memory(2, 12, seed=2), memory(2, 2, seed=3), memory(2, 3, seed=4)
    time_tokens.positions = torch.tensor([12.0, 13.0])
    audio.mask = torch.ones(2, 12, dtype=torch.bool)
    audio.mask[0, 10:] = False
    full = Memory(
        tokens=torch.cat([audio.tokens, time_tokens.tokens], dim=1),
        positions=torch.cat([audio.positions, time_tokens.positions]),
        mask=torch.cat([audio.mask, torch.ones(2, 2, dtype=torch.bool)], dim=1),
    )
    uncached = decoder(x, cond, positions=pos, memories=[full, guide])
    audio_kv = decoder.project_memory(audio, 0)
    guide_kv = decoder.project_memory(guide, 1)
    step_kv = audio_kv.cat(decoder.project_memory(time_tokens, 0))
    assert isinstance(step_kv, MemoryKV) and step_kv.length == 14
    cached = decoder(x, cond, positions=pos, memories=[step_kv, guide_kv])
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=0)


def test_self_attention_cache_matches_uncached_decoding():
    """Feed tokens one, then two, then the rest through a KV cache: same outputs."""
    decoder = make_decoder(causal=True)
    x, cond, pos = inputs(length=8)
    mem_kv = decoder.project_memory(memory(2, 10, seed=2))
    uncached = decoder(x, cond, positions=pos, memories=[mem_kv])
    cache = decoder.new_self_cache()
    pieces = []
    for start, stop in [(0, 1), (1, 3), (3, 8)]:
        pieces.append(
            decoder(
                x[:, start:stop],
                cond,
                positions=pos[start:stop],
                memories=[mem_kv],
                self_cache=cache,
            )
        )
    assert cache.length == 8
    torch.testing.assert_close(torch.cat(pieces, dim=1), uncached, atol=1e-5, rtol=0)


def test_self_cache_requires_causal_decoder():
    decoder = make_decoder(causal=False)
    x, cond, pos = inputs()
    cache = decoder.new_self_cache()
    with pytest.raises(ValueError, match="causal"):
        decoder(x, cond, positions=pos, memories=[memory(2, 3, seed=2)], self_cache=cache)


def test_rotary_depends_only_on_relative_positions():
    """Shifting query and key positions together leaves the output unchanged."""
    decoder = make_decoder(causal=True)
    x, cond, pos = inputs()
    mem = memory(2, 9, seed=2, scale=2.5)
    shifted = Memory(mem.tokens, mem.positions + 37.5)
    a = decoder(x, cond, positions=pos, memories=[mem])
    b = decoder(x, cond, positions=pos + 37.5, memories=[shifted])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    # A shift of the memory alone changes the output: positions are not ignored.
    c = decoder(x, cond, positions=pos, memories=[shifted])
    assert not torch.allclose(a, c, atol=1e-3)


@pytest.mark.parametrize("layout", ["contiguous", "odd_offset_view", "bfloat16"])
def test_rotate_matches_the_rotary_library(layout):
    """The complex product rotates as `apply_rotary_emb` does, on any strides and dtype."""
    g = torch.Generator().manual_seed(0)
    angles = RotaryEmbedding(dim=8)(torch.rand(1, 5, generator=g) * 40.0)[:, None]  # (1, 1, 5, 8)
    x = torch.randn(2, 3, 5, 8, generator=g)
    if layout == "odd_offset_view":
        x = torch.randn(2, 3, 5, 9, generator=g)[..., 1:]  # every pair starts at an odd offset
    if layout == "bfloat16":
        x = x.bfloat16()
    expected = apply_rotary_emb(angles, x)
    rotated = rotate(x, rotations_from_angles(angles))
    assert rotated.dtype == x.dtype
    torch.testing.assert_close(
        rotated, expected, atol=1e-5 if layout != "bfloat16" else 2e-2, rtol=0
    )


def test_memory_rows_shared_by_groups_of_samples_match_repeated_memory():
    """A memory of B rows serves x of B·G rows as if each memory row were repeated G times."""
    decoder = make_decoder(num_memories=1)
    x, cond, pos = inputs(batch=6)
    mem = memory(2, 9, seed=2)
    mem.mask = torch.ones(2, 9, dtype=torch.bool)
    mem.mask[1, 6:] = False
    repeated = Memory(mem.tokens.repeat_interleave(3, dim=0), mem.positions)
    repeated.mask = mem.mask.repeat_interleave(3, dim=0)
    shared = decoder(x, cond, positions=pos, memories=[mem])
    torch.testing.assert_close(
        shared, decoder(x, cond, positions=pos, memories=[repeated]), atol=1e-5, rtol=0
    )
    # Row 3 belongs to clip 1: with clip 0's memory row it would differ.
    wrong = Memory(mem.tokens[:1].expand(6, -1, -1), mem.positions)
    assert not torch.allclose(shared[3], decoder(x, cond, positions=pos, memories=[wrong])[3])


def test_per_sample_positions_match_shared_positions():
    decoder = make_decoder()
    x, cond, pos = inputs()
    mem = memory(2, 9, seed=2)
    a = decoder(x, cond, positions=pos, memories=[mem])
    per_sample = Memory(mem.tokens, mem.positions.expand(2, -1))
    b = decoder(x, cond, positions=pos.expand(2, -1), memories=[per_sample])
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_film_conditioning_changes_output():
    decoder = make_decoder()
    x, cond, pos = inputs()
    mem = [memory(2, 9, seed=2)]
    a = decoder(x, cond, positions=pos, memories=mem)
    b = decoder(x, cond + 1.0, positions=pos, memories=mem)
    assert not torch.allclose(a, b, atol=1e-3)


def test_gradients_reach_every_trainable_parameter():
    decoder = make_decoder(num_memories=2).train()
    x, cond, pos = inputs()
    out = decoder(x, cond, positions=pos, memories=[memory(2, 5, seed=2), memory(2, 3, seed=3)])
    out.square().mean().backward()
    missing = [n for n, p in decoder.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
