"""Gaussian diffusion around an x0-predicting denoiser, built on `diffusers` schedulers.

The schedulers hold the noise schedule and the rule for one step; the denoiser is a function
`x0 = f(x_t, t, cond)`. Classifier-free guidance, the step-independent condition cache and
any-length sampling wrap that function (docs/upstream.md §4):

- `schedules`: the training schedule, the named samplers and the forward process;
- `denoiser`: the interface a denoiser implements, and condition dropout;
- `losses`: the training loss;
- `sampling`: guided sampling of one window and of clips of any length;
- `windowing`: cutting a clip-length condition into windows.
"""
