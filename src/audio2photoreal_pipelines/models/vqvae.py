"""Body VQ-VAE on 1 fps keyframes (docs/upstream.md §3(c)): causal dilated convs + residual VQ.

The quantiser is `vector_quantize_pytorch.ResidualVQ`: Euclidean codebooks with EMA updates
(decay 0.99, eps 1e-5, Laplace-smoothed cluster sizes), k-means init, dead-code reset and a
plain straight-through estimator, as upstream.

Tiny batches (docs/upstream.md §10.8): a batch holds only B·K keyframe vectors (e.g. 4·20 = 80) for
a codebook of 1024. ResidualVQ's k-means init then samples its initial centroids with
replacement (it logs a warning), and every training step codes whose EMA cluster size falls
below `threshold_ema_dead_code` are replaced by batch vectors: at most as many codes as the
batch has vectors per step, without duplicates, each reset to cluster size 2, so an unused code
expires again on the next step. Upstream's own reset behaves the same way. k-means runs on the
first forward pass in any mode (even eval), so train before encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn
from vector_quantize_pytorch import ResidualVQ

from audio2photoreal_pipelines.units import BODY_DIM, KEYFRAME_STRIDE


@dataclass
class VQOutput:
    """VQ-VAE forward result; per-level statistics are over the valid keyframes of the batch."""

    recon: Tensor  # (B, K, F)
    codes: Tensor  # (B, K, Q) long
    commit_loss: Tensor  # scalar, mean over the Q levels
    perplexity: Tensor  # (Q,) exp(entropy) of each level's code histogram
    usage: Tensor  # (Q,) fraction of each level's codebook used


class CausalConv1d(nn.Conv1d):
    """Conv1d on (B, C, T) with left zero padding, so the output keeps length T and is causal."""

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, T) -> (B, C_out, T)."""
        left = self.dilation[0] * (self.kernel_size[0] - 1)
        return super().forward(F.pad(x, (left, 0)))


def _causal_stack(width: int, dilations: Sequence[int], *, act_after_last: bool) -> list[nn.Module]:
    """Kernel-2 causal dilated convs width -> width with LeakyReLU(0.2) between them."""
    layers: list[nn.Module] = []
    for i, dilation in enumerate(dilations):
        layers.append(CausalConv1d(width, width, 2, dilation=dilation))
        if act_after_last or i < len(dilations) - 1:
            layers.append(nn.LeakyReLU(0.2))
    return layers


def code_statistics(codes: Tensor, codebook_size: int, mask: Tensor | None = None):
    """Perplexity (Q,) and usage fraction (Q,) of codes (B, K, Q) over valid keyframes (B, K)."""
    flat = rearrange(codes, "b k q -> (b k) q")
    if mask is not None:
        flat = flat[rearrange(mask, "b k -> (b k)")]
    counts = torch.stack(
        [torch.bincount(level, minlength=codebook_size) for level in flat.unbind(dim=1)]
    ).float()
    probs = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)
    return entropy.exp(), (counts > 0).float().mean(dim=1)


class VQVAE(nn.Module):
    """Residual VQ-VAE on keyframes (B, K, F): no temporal downsampling, Q codes per keyframe."""

    def __init__(
        self,
        *,
        input_dim: int = BODY_DIM,
        width: int = 64,
        num_quantizers: int = 4,
        codebook_size: int = 1024,
        dilations: Sequence[int] = (1, 2, 3, 1),
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: int = 2,
        keyframe_stride: int = KEYFRAME_STRIDE,
    ) -> None:
        super().__init__()
        # Motion frames between the keyframes it codes; stored so that sampling can check that
        # the VQ, guide and body agree on it.
        self.keyframe_stride = keyframe_stride
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.encoder = nn.Sequential(
            nn.Conv1d(input_dim, width, 1),
            nn.LeakyReLU(0.2),
            *_causal_stack(width, dilations, act_after_last=False),
        )
        self.decoder = nn.Sequential(
            *_causal_stack(width, dilations, act_after_last=True),
            nn.Conv1d(width, input_dim, 1),
        )
        self.rvq = ResidualVQ(
            dim=width,
            num_quantizers=num_quantizers,
            codebook_size=codebook_size,
            decay=decay,
            eps=1e-5,
            kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters,
            threshold_ema_dead_code=threshold_ema_dead_code,
            # Upstream's per-level commitment MSE(sg(q), z) at weight 1; vq_loss weighs it.
            commitment_weight=1.0,
            # The library defaults to the rotation trick; upstream uses plain straight-through.
            rotation_trick=False,
            # The library would sync codebooks whenever a process group exists at construction,
            # so ranks forked after building the model and torchrun ranks that build it in a group
            # would train differently. Never syncing, DDP's buffer broadcast keeps every rank on
            # rank 0's codebook either way.
            sync_codebook=False,
        )

    def _latent(self, keyframes: Tensor) -> Tensor:
        """(B, K, F) -> encoder latent (B, K, W)."""
        return rearrange(self.encoder(rearrange(keyframes, "b k f -> b f k")), "b w k -> b k w")

    def _reconstruct(self, quantized: Tensor) -> Tensor:
        """Quantized latent (B, K, W) -> keyframes (B, K, F)."""
        return rearrange(self.decoder(rearrange(quantized, "b k w -> b w k")), "b f k -> b k f")

    def forward(self, keyframes: Tensor, mask: Tensor | None = None) -> VQOutput:
        """Encode, quantise (updating codebooks in training) and decode keyframes (B, K, F).

        mask (B, K): True on valid keyframes; padded ones neither update codebooks nor count.
        """
        latent = self._latent(keyframes)
        quantized, codes, losses, all_codes = self.rvq(latent, mask=mask, return_all_codes=True)
        if self.training:
            commit = losses.mean()
        else:
            # ResidualVQ returns zero losses in eval mode; recompute them for validation.
            commit = self._commitment(latent, all_codes, mask)
        perplexity, usage = code_statistics(codes, self.codebook_size, mask)
        return VQOutput(
            recon=self._reconstruct(quantized),
            codes=codes,
            commit_loss=commit,
            perplexity=perplexity,
            usage=usage,
        )

    @staticmethod
    def _commitment(latent: Tensor, all_codes: Tensor, mask: Tensor | None) -> Tensor:
        """Mean over levels of MSE(sg(code_q), residual_q); all_codes (Q, B, K, W)."""
        before = torch.cumsum(all_codes, dim=0) - all_codes  # codes of the earlier levels
        residuals = latent[None] - before.detach()
        errors = reduce((all_codes.detach() - residuals) ** 2, "q b k w -> q b k", "mean")
        if mask is not None:
            return errors[:, mask].mean()
        return errors.mean()

    @torch.no_grad()
    def encode(self, keyframes: Tensor, mask: Tensor | None = None) -> Tensor:
        """Keyframes (B, K, F) -> codes (B, K, Q); never updates the codebooks."""
        _, codes, _ = self.rvq(self._latent(keyframes), mask=mask, freeze_codebook=True)
        return codes

    def decode(self, codes: Tensor) -> Tensor:
        """Codes (B, K, Q) -> keyframes (B, K, F)."""
        return self._reconstruct(self.rvq.get_output_from_indices(codes))

    @torch.no_grad()
    def reconstruct(self, keyframes: Tensor, mask: Tensor) -> Tensor:
        """Keyframes (B, K, F) through the codebook, decode(encode(x)); 0 where mask (B, K) is off.

        What the guide's tokens can express; never updates the codebooks.
        """
        recon = self.decode(self.encode(keyframes, mask))
        return recon * mask.unsqueeze(-1).to(recon.dtype)


def vq_loss(
    out: VQOutput, target: Tensor, mask: Tensor | None = None, *, commit_weight: float = 0.02
) -> tuple[Tensor, dict[str, float]]:
    """Upstream's VQ objective: SmoothL1 (β 1) reconstruction over valid keyframes + 0.02·commit."""
    errors = reduce(F.smooth_l1_loss(out.recon, target, reduction="none"), "b k f -> b k", "mean")
    recon = errors[mask].mean() if mask is not None else errors.mean()
    loss = recon + commit_weight * out.commit_loss
    metrics = {
        "recon": recon.item(),
        "commit": out.commit_loss.item(),
    }
    for level, (perplexity, usage) in enumerate(zip(out.perplexity, out.usage, strict=True)):
        metrics[f"perplexity_{level}"] = perplexity.item()
        metrics[f"usage_{level}"] = usage.item()
    return loss, metrics
