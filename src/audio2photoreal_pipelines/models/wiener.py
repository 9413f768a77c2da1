"""A per-frequency Wiener gain that lets an x0 denoiser keep the detail its noisy input carries.

A small x0-predicting body denoiser trained for minutes learns the motion that the audio and the
guide poses determine, but not to copy what only x_t holds: its x0 error at t = 0, where x_t is
the answer, equals its error at t = 100, so every sample is the smooth conditional mean and the
unpredictable part of the motion (a fifth of the synthetic person's joint velocity) is missing.

The fix is the linear estimator on top of the network's prediction F:

    x0 = F + irfft(G_t(f) * rfft(x_t / sqrt(abar_t) - F))

per frequency f and feature, with G_t fitted after training by least squares on training windows
(`fit_wiener_gain`). Where F is right, x_t / sqrt(abar_t) - F is noise and G_t is 0; where x_t
holds detail F lacks (low noise, frequencies the motion has), G_t approaches 1. The gain is the
Wiener filter S / (S + sigma_t^2) when F's residual has spectrum S and is independent of the
noise; the regression needs neither assumption. No library fits such a filter, hence by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

# The envelope: F's speed averaged over this many frames (a third of a second at 30 fps), and the
# scales a a frame may take; the gain is evaluated at the scales 2**k in between and interpolated.
ENVELOPE_FRAMES = 11
ENVELOPE_OCTAVES = 3


def local_speed_envelope(x0_pred: Tensor, length_mask: Tensor, exponent: float) -> Tensor:
    """(B, T) scale a = (speed / clip mean) ** exponent of x0_pred (B, T, F), mean 1 per clip.

    Speed is the norm of the frame-to-frame change, averaged over ENVELOPE_FRAMES frames; a is
    clamped to [2**-ENVELOPE_OCTAVES, 2**ENVELOPE_OCTAVES] and 1 on padded frames.
    """
    mask = length_mask.to(x0_pred.dtype)
    scale = _local_mean(x0_pred.diff(dim=1).norm(dim=-1), mask).clamp(min=1e-8) ** exponent
    scale = scale / ((scale * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1))
    scale = scale.clamp(2.0**-ENVELOPE_OCTAVES, 2.0**ENVELOPE_OCTAVES)
    return torch.where(length_mask.bool(), scale, torch.ones_like(scale))


def _local_mean(per_step: Tensor, mask: Tensor) -> Tensor:
    """(B, T - 1) frame-to-frame values -> (B, T), averaged over the valid frames among the
    ENVELOPE_FRAMES around each frame (the first frame takes the first step's value)."""
    values = torch.cat([per_step[:, :1], per_step], 1) * mask

    def pooled(x: Tensor) -> Tensor:
        return nn.functional.avg_pool1d(
            x[:, None], ENVELOPE_FRAMES, stride=1, padding=ENVELOPE_FRAMES // 2
        )[:, 0]

    return pooled(values) / pooled(mask).clamp(min=1e-6)


def _centred_logs(values: Tensor, mask: Tensor) -> Tensor:
    """log of (B, T) positive values minus each row's mean over the valid frames, valid only."""
    logs = values.clamp(min=1e-12).log()
    mean = (logs * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
    return (logs - mean)[mask.bool()]


def noise_levels(num_levels: int, num_train_timesteps: int) -> Tensor:
    """`num_levels` diffusion steps from 0 to T - 1, dense at low t: (T - 1) u^2 on a u grid.

    The gain changes fastest at low t, where sigma_t grows from 0; the samplers' last steps
    land there.
    """
    if num_levels < 2:
        raise ValueError(f"need at least 2 noise levels, got {num_levels}")
    grid = torch.linspace(0, 1, num_levels, dtype=torch.float64) ** 2
    return torch.unique(((num_train_timesteps - 1) * grid).round().long())


class WienerGain(nn.Module):
    """x0 = F + irfft(G_t(f) rfft(x_t / sqrt(abar_t) - F)) with a fitted gain table G.

    alphas_cumprod (T,) is the training schedule; levels (L,) the fitted steps; gain (L, K, F)
    the gain at K frequencies evenly spaced from 0 to fps / 2. Steps between two levels
    interpolate linearly; a window's frequencies take the nearest fitted one. With
    envelope_exponent > 0 the gain follows F's local speed (module docstring).
    """

    def __init__(
        self,
        alphas_cumprod: Tensor,
        levels: Tensor,
        gain: Tensor,
        envelope_exponent: float = 0.0,
        subspace: Tensor | None = None,
    ) -> None:
        super().__init__()
        if gain.ndim != 3 or gain.shape[0] != levels.shape[0]:
            raise ValueError(f"gain {tuple(gain.shape)} does not match {levels.shape[0]} levels")
        features = gain.shape[-1]
        projector = torch.eye(features) if subspace is None else subspace @ subspace.T
        if projector.shape != (features, features):
            raise ValueError(f"subspace {tuple(subspace.shape)} is not ({features}, k)")
        self.register_buffer("projector", projector.float())
        self.register_buffer("alphas_cumprod", alphas_cumprod.float().clone())
        self.register_buffer("levels", levels.long().clone())
        self.register_buffer("gain", gain.float().clone())
        self.register_buffer("envelope_exponent", torch.tensor(float(envelope_exponent)))

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        # Pickled before the envelope existed: the stationary gain.
        self._buffers.setdefault("envelope_exponent", torch.tensor(0.0))
        self._buffers.setdefault("projector", torch.eye(self.gain.shape[-1]))

    def gain_at(self, t: Tensor, frames: int) -> Tensor:
        """Gain (B, frames + 1, F) for steps t (B,) on the rfft grid of 2 * frames points."""
        levels = self.levels.to(t.device)
        low = (torch.searchsorted(levels, t, right=True) - 1).clamp(0, len(levels) - 2)
        span = (levels[low + 1] - levels[low]).float()
        weight = ((t - levels[low]).float() / span).clamp(0, 1)[:, None, None]
        table = self.gain[low] * (1 - weight) + self.gain[low + 1] * weight  # (B, K, F)
        # Frequencies of this window's grid as positions on the fitted grid (0 .. fps/2).
        position = torch.linspace(0, 1, frames + 1, device=t.device) * (table.shape[1] - 1)
        return table[:, position.round().long()]

    def forward(self, x_t: Tensor, t: Tensor, x0_pred: Tensor, length_mask: Tensor) -> Tensor:
        """x_t, x0_pred (B, T, F), steps t (B,), valid frames (B, T) -> corrected x0 (B, T, F)."""
        frames = x_t.shape[1]
        abar = self.alphas_cumprod.to(x_t.device)[t].view(-1, 1, 1)
        residual = (x_t / abar.sqrt() - x0_pred) * length_mask.unsqueeze(-1)
        # Zero-padding to 2T makes the filtering a linear, not circular, convolution.
        spectrum = torch.fft.rfft(residual, n=2 * frames, dim=1)
        gain = self.gain_at(t, frames)

        def filtered(g: Tensor) -> Tensor:
            return torch.fft.irfft(g * spectrum, n=2 * frames, dim=1)[:, :frames]

        projector = self.projector.to(x_t.device)
        exponent = float(self.envelope_exponent)
        if exponent == 0.0:
            return x0_pred + filtered(gain) @ projector
        # The gain of spectrum a S at the scales a = 2**k, interpolated per frame in log2 a: a
        # short-time Wiener filter for an envelope slower than the filter's response.
        octave = torch.log2(local_speed_envelope(x0_pred, length_mask, exponent))
        position = (octave + ENVELOPE_OCTAVES).clamp(0, 2 * ENVELOPE_OCTAVES)
        below = position.floor().clamp(max=2 * ENVELOPE_OCTAVES - 1)
        weight = (position - below)[..., None]
        out = torch.zeros_like(x0_pred)
        for k in range(2 * ENVELOPE_OCTAVES + 1):
            scale = 2.0 ** (k - ENVELOPE_OCTAVES)
            share = (below == k)[..., None] * (1 - weight) + (below == k - 1)[..., None] * weight
            if share.any():
                out = out + share * filtered(scale * gain / (scale * gain + 1 - gain).clamp(1e-6))
        return x0_pred + out @ projector


def _masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> float:
    """Mean squared error over valid frames mask (B, T) of (B, T, F) tensors."""
    squared = (pred - target).square() * mask.unsqueeze(-1)
    return float(squared.sum() / (mask.sum() * pred.shape[-1]).clamp(min=1))


def _noised(x0: Tensor, abar: Tensor, generator: torch.Generator) -> Tensor:
    noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(x0.device)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


@torch.no_grad()
def fit_wiener_gain(
    predict_x0: Callable[[Tensor, Tensor, Mapping[str, Tensor]], Tensor],
    batches: Callable[[], Mapping[str, Tensor]],
    alphas_cumprod: Tensor,
    *,
    num_batches: int,
    num_levels: int,
    generator: torch.Generator,
    envelope: bool = False,
    subspace_share: float | None = None,
    report_at: tuple[float, ...] = (0.0, 0.02, 0.1, 0.4, 0.7),
) -> tuple[WienerGain, dict[str, list[float]]]:
    """Least-squares gain per level, frequency and feature from `num_batches` training batches.

    predict_x0(x_t, t, cond) is the denoiser without a gain; batches() draws a batch with
    "motion" (B, T, F), "length_mask" (B, T) and the condition, all of one padded length T.
    With `envelope`, the envelope exponent is the least-squares slope, within each window, of
    the log local energy of the residual's velocity on the log local speed of the prediction at
    the last step (where F is the conditional mean), clamped to [0, 2].
    With `subspace_share`, what the gain adds is projected on the fewest principal axes of the
    motion's frame-to-frame change (in the fitting windows) that hold that share of its variance:
    the gain is fitted one feature at a time, so it passes x_t's noise into directions in which
    the motion hardly moves, and over a sampler's steps that noise builds up there (measured on
    the synthetic person: 2-3x GT's velocity variance in the axes beyond the 98.5 %).
    Returns the gain and a report: x0 MSE [without, with] the gain on one further batch at the
    steps `report_at` x T (t0, t20, t100, t400, t700 of 1000).
    """
    levels = noise_levels(num_levels, len(alphas_cumprod))
    cross = power = None
    log_speed: list[Tensor] = []
    log_energy: list[Tensor] = []
    velocity_moment = 0.0
    for _ in range(num_batches):
        batch = batches()
        x0, mask = batch["motion"], batch["length_mask"].to(batch["motion"].dtype)
        cond = {k: v for k, v in batch.items() if k != "motion"}
        moving = (mask[:, 1:] * mask[:, :-1]).bool()
        velocity = x0.diff(dim=1)[moving].double().cpu()
        velocity_moment = velocity_moment + velocity.T @ velocity
        if cross is None:
            cross = torch.zeros(len(levels), x0.shape[1] + 1, x0.shape[-1], dtype=torch.float64)
            power = torch.zeros_like(cross)
        elif x0.shape[1] + 1 != cross.shape[1]:
            raise ValueError("the fitting batches must share one padded length")
        for index, step in enumerate(levels.tolist()):
            abar = alphas_cumprod[step].to(x0.device)
            x_t = _noised(x0, abar, generator)
            t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
            pred = predict_x0(x_t, t, cond)
            n = 2 * x0.shape[1]
            given = torch.fft.rfft((x_t / abar.sqrt() - pred) * mask[..., None], n=n, dim=1)
            wanted = torch.fft.rfft((x0 - pred) * mask[..., None], n=n, dim=1)
            cross[index] += (wanted * given.conj()).real.sum(0).double().cpu()
            power[index] += given.abs().square().sum(0).double().cpu()
            if envelope and index == len(levels) - 1:
                speed = _local_mean(pred.diff(dim=1).norm(dim=-1), mask)
                energy = _local_mean((x0 - pred).diff(dim=1).square().sum(-1), mask)
                log_speed.append(_centred_logs(speed, mask).double().cpu())
                log_energy.append(_centred_logs(energy, mask).double().cpu())
    exponent = 0.0
    if envelope:
        x, y = torch.cat(log_speed), torch.cat(log_energy)
        exponent = float((x @ y / (x @ x).clamp(min=1e-12)).clamp(0.0, 2.0))
    gain = (cross / power.clamp(min=1e-12)).clamp(0.0, 1.0)
    subspace = None if subspace_share is None else _principal_axes(velocity_moment, subspace_share)
    wiener = WienerGain(alphas_cumprod, levels, gain, envelope_exponent=exponent, subspace=subspace)

    batch = batches()
    x0, mask = batch["motion"], batch["length_mask"].to(batch["motion"].dtype)
    cond = {k: v for k, v in batch.items() if k != "motion"}
    report = {}
    steps = len(alphas_cumprod)
    for step in sorted({min(round(at * steps), steps - 1) for at in report_at}):
        x_t = _noised(x0, alphas_cumprod[step].to(x0.device), generator)
        t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
        pred = predict_x0(x_t, t, cond)
        corrected = wiener.to(x0.device)(x_t, t, pred, mask)
        report[f"t{step}"] = [_masked_mse(pred, x0, mask), _masked_mse(corrected, x0, mask)]
    return wiener, report


def _principal_axes(second_moment: Tensor, share: float) -> Tensor:
    """(F, k) orthonormal axes of the (F, F) second moment that hold `share` of its trace."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"subspace share {share!r} is not in (0, 1]")
    variances, axes = torch.linalg.eigh(second_moment)
    variances, axes = variances.flip(0), axes.flip(1)
    cumulative = variances.cumsum(0) / variances.sum()
    count = int(torch.searchsorted(cumulative, torch.tensor(share, dtype=cumulative.dtype))) + 1
    return axes[:, : min(count, axes.shape[1])].float()
