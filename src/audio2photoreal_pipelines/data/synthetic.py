"""Deterministic synthetic person written in upstream's per-scene file layout.

Every scene NN gets `sceneNN_audio.wav` (48 kHz, 2 channels, 1600*T samples, PCM_16),
`sceneNN_body_pose.npy` (T, 104) float32, `sceneNN_face_expression.npy` (T, 256) float32,
`sceneNN_missing_face_frames.npy` (M,) int64, and `sceneNN_synthetic_truth.npz` holding the true
drivers: `lip` (T,), `onset_frames`/`onset_seconds` (K,), `partner_active` (T,), `stroke_frames`
and `stroke_prototypes` (S,).

How the content is built (so that learning is measurable):
- Channel 0 (the person) and channel 1 (the partner) take turns. A turn is a run of voiced
  syllables (harmonics of a gliding f0, shaped by 3 formants that change per syllable, under an
  attack/decay envelope) separated by short gaps and occasional pauses.
- Face codes are a fixed linear mix of latent drivers, dominated by the lip opening (the channel-0
  envelope averaged per frame); a reaction driver while the partner talks; small drift, blinks and
  noise.
- Body pose is a fixed linear mix of slow drift, idle sway and beat-gesture strokes. Strokes start
  at stressed channel-0 syllable onsets, each drawn from a few fixed gesture prototypes.
- Both motions are normalised to unit variance per dimension over the person, then scaled with the
  real per-dimension means and stds of upstream's RLW104 (`synthetic_scales.npz`).

Pose and face are float32: training works in float32 and it halves the files (upstream's dtype is
unknown). Missing face frames hold `code_mean`. Pose column 3 is not wrapped into [0, 2pi).
"""

import io
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

SAMPLE_RATE = 48_000
FPS = 30
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
POSE_DIM = 104
FACE_DIM = 256
SCALE_KEYS = ("pose_mean", "pose_std", "code_mean", "code_std", "audio_mean", "audio_std")

_VOWELS = np.array(  # F1, F2, F3 in Hz of a few vowels (a, e, i, o, u)
    [[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]],
    dtype=np.float64,
)
_FORMANT_BANDWIDTH = np.array([150.0, 200.0, 300.0])
_FORMANT_GAIN = np.array([1.0, 0.6, 0.3])
_MAX_HARMONIC_HZ = 5000.0
_NOISE_FLOOR = 0.03  # background noise std as a fraction of the channel std
_NUM_PROTOTYPES = 6
_BLINK = np.array([0.4, 1.0, 0.8, 0.4, 0.15])
_MIX_CONCENTRATION = 40.0  # Dirichlet concentration: how closely each dimension follows the targets

# Face drivers: lip, partner reaction, drift a, drift b, blink; last entry is per-dim noise.
_FACE_SHARES = np.array([0.72, 0.13, 0.025, 0.025, 0.04, 0.06])
# Body drivers: 3 drift, 2 sway, 6 stroke prototypes; last entry is per-dim noise.
_ROOT_SHARES = np.array([0.55 / 3] * 3 + [0.25 / 2] * 2 + [0.15 / 6] * 6 + [0.05])
_LIMB_SHARES = np.array([0.09 / 3] * 3 + [0.16 / 2] * 2 + [0.70 / 6] * 6 + [0.05])
_ROOT_DIMS = 6


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """What to generate: one person of `num_scenes` scenes lasting `min_seconds`..`max_seconds`."""

    person: str = "SYN001"
    seed: int = 0
    num_scenes: int = 13
    min_seconds: float = 30
    max_seconds: float = 90
    faceless_scene: int | None = 2  # 1-based scene whose face is missing in every frame
    missing_burst_fraction: float = 0.02  # fraction of face frames missing in short bursts

    def __post_init__(self) -> None:
        if not 1 <= self.num_scenes <= 99:
            raise ValueError(f"num_scenes must be in 1..99, got {self.num_scenes}")
        if not 1 <= self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"need 1 <= min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )
        if self.faceless_scene is not None and not 1 <= self.faceless_scene <= self.num_scenes:
            raise ValueError(f"faceless_scene must be in 1..{self.num_scenes} or None")
        if not 0 <= self.missing_burst_fraction < 0.5:
            raise ValueError(
                f"missing_burst_fraction must be in [0, 0.5), got {self.missing_burst_fraction}"
            )


@dataclass(frozen=True)
class _Person:
    """Everything fixed for the person: voices, motion mixes, gesture prototypes."""

    base_f0: tuple[float, float]  # per channel
    formant_scale: tuple[float, float]
    face_mix: np.ndarray  # (256, 6): loadings on 5 drivers, then noise share
    body_mix: np.ndarray  # (104, 12): loadings on 11 drivers, then noise share
    prototypes: tuple[np.ndarray, ...]  # temporal profile of each gesture prototype


@dataclass
class _Scene:
    """A scene's plan and frame-rate drivers, drawn in the first pass."""

    frames: int
    syllables: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # per channel
    partner_active: np.ndarray  # (T,) bool
    lip: np.ndarray  # (T,)
    strokes: dict[str, np.ndarray]
    missing: np.ndarray  # (M,) int64
    face_drivers: np.ndarray  # (T, 5)
    body_drivers: np.ndarray  # (T, 11)
    energy: np.ndarray  # (2,) sum of squared envelope per channel
    audio_seed: np.random.SeedSequence
    noise_seed: np.random.SeedSequence


def generate_person(out_dir: Path, config: SyntheticConfig) -> list[str]:
    """Write every scene of the synthetic person into `out_dir`; return the sorted scene names."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scales = load_scales()
    rng = np.random.default_rng(config.seed)
    seconds = rng.uniform(config.min_seconds, config.max_seconds, size=config.num_scenes)
    person_rng, *scene_rngs = rng.spawn(1 + config.num_scenes)
    person = _draw_person(person_rng)
    scenes = [
        _plan_scene(scene_rng, person, round(float(s) * FPS), config.missing_burst_fraction)
        for scene_rng, s in zip(scene_rngs, seconds, strict=True)
    ]
    # The faceless scene holds no face values, so it does not shape the face statistics.
    faced = [s.face_drivers for i, s in enumerate(scenes) if i + 1 != config.faceless_scene]
    face_norm = _Normaliser(person.face_mix, faced or [s.face_drivers for s in scenes])
    body_norm = _Normaliser(person.body_mix, [scene.body_drivers for scene in scenes])
    gains, noise_stds = _audio_gains(scenes, scales["audio_std"])
    names = []
    for index, scene in enumerate(scenes):
        name = f"scene{index + 1:02d}"
        faceless = index + 1 == config.faceless_scene
        _write_scene(
            out_dir, name, scene, scales, face_norm, body_norm, gains, noise_stds, faceless
        )
        names.append(name)
    return sorted(names)


def load_scales() -> dict[str, np.ndarray]:
    """The per-dimension means and stds shipped with the package (from upstream RLW104)."""
    with resources.as_file(resources.files(__package__) / "synthetic_scales.npz") as path:
        with np.load(path) as data:
            return {key: data[key] for key in SCALE_KEYS}


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed npz with fixed zip timestamps, so equal arrays give equal bytes."""
    with _atomic_open(Path(path)) as handle, zipfile.ZipFile(handle, "w") as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            archive.writestr(
                zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue()
            )


@contextmanager
def _atomic_open(path: Path) -> Iterator[io.BufferedWriter]:
    """Open a temp file beside `path`; move it into place only when the block succeeds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _draw_person(rng: np.random.Generator) -> _Person:
    """Voices, face/body mixing matrices and gesture prototypes, fixed for the whole person."""
    face_mix = _draw_mix(rng, np.tile(_FACE_SHARES, (FACE_DIM, 1)))
    targets = np.tile(_LIMB_SHARES, (POSE_DIM, 1))
    targets[:_ROOT_DIMS] = _ROOT_SHARES
    body_mix = _draw_mix(rng, targets)
    prototypes = []
    for _ in range(_NUM_PROTOTYPES):
        length = int(rng.integers(9, 19))  # 0.3-0.6 s
        peak = rng.uniform(0.3, 0.6)
        warped = np.linspace(0.0, 1.0, length) ** (np.log(0.5) / np.log(peak))
        prototypes.append(np.sin(np.pi * warped) ** 2)
    return _Person(
        base_f0=(float(rng.uniform(115, 150)), float(rng.uniform(170, 210))),
        formant_scale=(1.0, 1.12),
        face_mix=face_mix,
        body_mix=body_mix,
        prototypes=tuple(prototypes),
    )


def _draw_mix(rng: np.random.Generator, targets: np.ndarray) -> np.ndarray:
    """Variance shares per dim drawn around `targets` (D, J+1) -> signed loadings, noise share."""
    shares = np.stack([rng.dirichlet(_MIX_CONCENTRATION * row) for row in targets])
    signs = rng.choice([-1.0, 1.0], size=(shares.shape[0], shares.shape[1] - 1))
    return np.concatenate([signs * np.sqrt(shares[:, :-1]), shares[:, -1:]], axis=1)


def _plan_scene(
    rng: np.random.Generator, person: _Person, frames: int, missing_fraction: float
) -> _Scene:
    """Draw turns, syllables, strokes, missing frames and frame-rate drivers of one scene."""
    plan_rng, audio_rng, noise_rng = rng.spawn(3)
    n_samples = frames * SAMPLES_PER_FRAME
    turns = _draw_turns(plan_rng, n_samples / SAMPLE_RATE)
    syllables = tuple(
        _draw_syllables(plan_rng, [t for t in turns if t[0] == ch], ch, person, n_samples)
        for ch in (0, 1)
    )
    envelopes = [_channel_envelope(syl, n_samples) for syl in syllables]
    energy = np.array([np.square(env).sum() for env in envelopes])
    frame_env = envelopes[0].reshape(frames, SAMPLES_PER_FRAME).mean(axis=1)
    lip = np.convolve(np.pad(frame_env, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    partner_active = np.zeros(frames, dtype=bool)
    for channel, start, end in turns:
        if channel == 1:
            partner_active[int(start * FPS) : int(np.ceil(end * FPS))] = True
    strokes = _draw_strokes(plan_rng, syllables[0], frames)
    face = np.stack(
        [
            lip,
            _ema(partner_active.astype(np.float64), FPS * 0.4),
            _ou(plan_rng, frames, FPS * 6.0),
            _ou(plan_rng, frames, FPS * 6.0),
            _blinks(plan_rng, frames),
        ],
        axis=1,
    )
    body = np.concatenate(
        [
            np.stack([_ou(plan_rng, frames, FPS * 10.0) for _ in range(3)], axis=1),
            _sway(plan_rng, frames),
            _stroke_drivers(strokes, person.prototypes, frames),
        ],
        axis=1,
    )
    return _Scene(
        frames=frames,
        syllables=syllables,
        partner_active=partner_active,
        lip=lip,
        strokes=strokes,
        missing=_draw_missing(plan_rng, frames, missing_fraction),
        face_drivers=face,
        body_drivers=body,
        energy=energy,
        audio_seed=audio_rng.bit_generator.seed_seq,
        noise_seed=noise_rng.bit_generator.seed_seq,
    )


def _draw_turns(rng: np.random.Generator, duration: float) -> list[tuple[int, float, float]]:
    """Alternating (channel, start_s, end_s) turns of a few seconds, small gaps or overlaps."""
    turns = []
    speaker = int(rng.integers(2))
    start = rng.uniform(0.1, 0.5)
    while start < duration - 0.3:
        end = min(start + rng.uniform(1.5, 5.0), duration)
        turns.append((speaker, start, end))
        speaker = 1 - speaker
        start = end + rng.uniform(-0.15, 0.6)
    return turns


def _draw_syllables(
    rng: np.random.Generator,
    turns: list[tuple[int, float, float]],
    channel: int,
    person: _Person,
    n_samples: int,
) -> dict[str, np.ndarray]:
    """Syllables (~3.5 per second of speaking) of one channel, as a dict of per-syllable arrays."""
    rows = []
    for _, start, end in turns:
        t = start
        while True:
            stressed = rng.random() < 0.35
            length = rng.uniform(0.08, 0.25) * (1.15 if stressed else 1.0)
            if t + length > end:
                break
            f0 = person.base_f0[channel] * 2.0 ** (rng.normal(0.0, 0.25) + 0.2 * stressed)
            f0_end = f0 * 2.0 ** rng.uniform(-0.3, 0.2)
            vowel = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.92, 1.08, size=3)
            rows.append(
                [
                    round(t * SAMPLE_RATE),
                    round(length * SAMPLE_RATE),
                    rng.uniform(0.9, 1.2) if stressed else rng.uniform(0.55, 0.9),
                    np.clip(f0, 100, 250),
                    np.clip(f0_end, 100, 250),
                    *(vowel * person.formant_scale[channel]),
                    rng.uniform(0.6, 1.0),
                    rng.uniform(1.2, 2.0),
                    stressed,
                ]
            )
            pause = rng.random() < 0.12
            t += length + (rng.uniform(0.25, 0.6) if pause else rng.uniform(0.02, 0.1))
    table = np.array(rows, dtype=np.float64).reshape(-1, 11)
    onset = table[:, 0].astype(np.int64)
    return {
        "onset": onset,
        "length": np.minimum(table[:, 1].astype(np.int64), n_samples - onset),
        "amp": table[:, 2],
        "f0": table[:, 3:5],
        "formants": table[:, 5:8],
        "shape": table[:, 8:10],
        "stressed": table[:, 10].astype(bool),
    }


def _syllable_envelope(length: int, amp: float, attack: float, decay: float) -> np.ndarray:
    """Attack/decay amplitude envelope u^a (1-u)^b of one syllable, peak `amp`."""
    u = (np.arange(length) + 0.5) / length
    env = u**attack * (1.0 - u) ** decay
    return amp * env / env.max()


def _channel_envelope(syl: dict[str, np.ndarray], n_samples: int) -> np.ndarray:
    """(N,) sample-level syllable envelope of one channel."""
    env = np.zeros(n_samples)
    for i in range(len(syl["onset"])):
        start, length = syl["onset"][i], syl["length"][i]
        env[start : start + length] += _syllable_envelope(length, syl["amp"][i], *syl["shape"][i])
    return env


def _carrier(length: int, f0: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Unit-RMS voiced carrier: harmonics of an f0 glide weighted by formant resonances."""
    f0_track = np.linspace(f0[0], f0[1], length)
    phase = 2.0 * np.pi * np.cumsum(f0_track) / SAMPLE_RATE
    harmonics = np.arange(1, int(_MAX_HARMONIC_HZ // f0.max()) + 1)
    freq = harmonics[:, None] * f0.mean()
    resonance = _FORMANT_GAIN / (1.0 + ((freq - formants) / (_FORMANT_BANDWIDTH / 2)) ** 2)
    weights = (resonance.sum(axis=1) + 0.02) / (1.0 + freq[:, 0] / 1000.0)
    # sin(k*phase) by the Chebyshev recurrence: one multiply-add per harmonic instead of a sin.
    twice_cos = 2.0 * np.cos(phase)
    previous, current = np.zeros(length), np.sin(phase)
    out = weights[0] * current
    for weight in weights[1:]:
        previous, current = current, twice_cos * current - previous
        out += weight * current
    return out / np.sqrt(np.mean(out**2))


def _synth_channel(
    syl: dict[str, np.ndarray], n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """(N,) unscaled speech of one channel: voiced syllables, each with a short noise burst."""
    out = np.zeros(n_samples)
    for i in range(len(syl["onset"])):
        start, length = syl["onset"][i], syl["length"][i]
        env = _syllable_envelope(length, syl["amp"][i], *syl["shape"][i])
        out[start : start + length] += env * _carrier(length, syl["f0"][i], syl["formants"][i])
        burst = min(length, int(0.012 * SAMPLE_RATE))  # consonant-like onset noise
        out[start : start + burst] += 0.25 * syl["amp"][i] * rng.standard_normal(burst)
    return out


def _draw_strokes(
    rng: np.random.Generator, syl: dict[str, np.ndarray], frames: int
) -> dict[str, np.ndarray]:
    """Beat strokes at stressed channel-0 onsets, at least 0.5 s apart, each with a prototype."""
    onsets = syl["onset"][syl["stressed"]] // SAMPLES_PER_FRAME
    kept = []
    for frame in onsets:
        if not kept or frame - kept[-1] >= FPS // 2:
            kept.append(int(frame))
    count = len(kept)
    return {
        "frame": np.array(kept, dtype=np.int64),
        "prototype": rng.integers(_NUM_PROTOTYPES, size=count).astype(np.int64),
        "amp": rng.uniform(0.7, 1.3, size=count),
    }


def _stroke_drivers(
    strokes: dict[str, np.ndarray], prototypes: tuple[np.ndarray, ...], frames: int
) -> np.ndarray:
    """(T, P) one driver per prototype: its temporal profile placed at each of its strokes."""
    drivers = np.zeros((frames, len(prototypes)))
    for frame, proto, amp in zip(
        strokes["frame"], strokes["prototype"], strokes["amp"], strict=True
    ):
        profile = prototypes[proto][: frames - frame]
        drivers[frame : frame + len(profile), proto] += amp * profile
    return drivers


def _ema(x: np.ndarray, tau_frames: float) -> np.ndarray:
    """Causal exponential smoothing with time constant `tau_frames`."""
    a = np.exp(-1.0 / tau_frames)
    return lfilter([1.0 - a], [1.0, -a], x, zi=[a * x[0]])[0]


def _ou(rng: np.random.Generator, frames: int, tau_frames: float) -> np.ndarray:
    """Stationary unit-variance Ornstein-Uhlenbeck drift sampled per frame."""
    a = np.exp(-1.0 / tau_frames)
    noise = rng.standard_normal(frames)
    return lfilter([np.sqrt(1.0 - a * a)], [1.0, -a], noise, zi=[a * rng.standard_normal()])[0]


def _sway(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(T, 2) idle sway: two sinusoids at 0.2-0.5 Hz with random phase."""
    t = np.arange(frames)[:, None] / FPS
    freq = rng.uniform(0.2, 0.5, size=2)
    return np.sin(2.0 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, size=2))


def _blinks(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(T,) blink driver: a 5-frame bump every 2-6 s."""
    out = np.zeros(frames)
    frame = int(rng.integers(0, 3 * FPS))
    while frame < frames:
        bump = _BLINK[: frames - frame]
        out[frame : frame + len(bump)] += bump
        frame += int(rng.integers(2 * FPS, 6 * FPS))
    return out


def _draw_missing(rng: np.random.Generator, frames: int, fraction: float) -> np.ndarray:
    """Sorted frame indices missing in bursts of 2-15 frames, about `fraction` of all frames."""
    target = round(fraction * rng.uniform(0.6, 1.4) * frames)
    mask = np.zeros(frames, dtype=bool)
    while mask.sum() < target:
        length = int(min(rng.integers(2, 16), max(2, target - mask.sum())))
        start = int(rng.integers(0, max(1, frames - length + 1)))
        mask[start : start + length] = True
    return np.flatnonzero(mask).astype(np.int64)


class _Normaliser:
    """Standardise drivers over the person, mix them, and scale each output dim to unit variance."""

    def __init__(self, mix: np.ndarray, drivers: list[np.ndarray]) -> None:
        stacked = np.concatenate(drivers, axis=0)
        self.mean = stacked.mean(axis=0)
        self.std = np.maximum(stacked.std(axis=0), 1e-12)
        corr = np.cov((stacked - self.mean) / self.std, rowvar=False, bias=True)
        self.loadings = mix[:, :-1]
        self.noise = np.sqrt(mix[:, -1])
        variance = np.einsum("dj,jk,dk->d", self.loadings, corr, self.loadings) + mix[:, -1]
        self.scale = 1.0 / np.sqrt(variance)

    def __call__(self, drivers: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """(T, J) drivers and (T, D) unit noise -> (T, D) unit-variance mix."""
        z = ((drivers - self.mean) / self.std) @ self.loadings.T + noise * self.noise
        return z * self.scale


def _audio_gains(scenes: list[_Scene], target_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel speech gain and noise std that give the target std over the whole person."""
    samples = sum(scene.frames for scene in scenes) * SAMPLES_PER_FRAME
    mean_square = sum(scene.energy for scene in scenes) / samples
    speech_std = target_std.astype(np.float64) * np.sqrt(1.0 - _NOISE_FLOOR**2)
    gains = np.divide(speech_std, np.sqrt(mean_square), out=np.zeros(2), where=mean_square > 0)
    return gains, target_std.astype(np.float64) * _NOISE_FLOOR


def _write_scene(
    out_dir: Path,
    name: str,
    scene: _Scene,
    scales: dict[str, np.ndarray],
    face_norm: _Normaliser,
    body_norm: _Normaliser,
    gains: np.ndarray,
    noise_stds: np.ndarray,
    faceless: bool,
) -> None:
    """Synthesise audio and motion of one scene and write its five files atomically."""
    frames, n_samples = scene.frames, scene.frames * SAMPLES_PER_FRAME
    audio_rng, noise_rng = (np.random.default_rng(s) for s in (scene.audio_seed, scene.noise_seed))
    audio = np.stack(
        [
            scales["audio_mean"][ch]
            + gains[ch] * _synth_channel(scene.syllables[ch], n_samples, audio_rng)
            + noise_stds[ch] * audio_rng.standard_normal(n_samples)
            for ch in (0, 1)
        ],
        axis=1,
    )
    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
    with _atomic_open(out_dir / f"{name}_audio.wav") as handle:
        sf.write(handle, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")

    body_noise = noise_rng.standard_normal((frames + 2, POSE_DIM))
    # Smooth the body noise over 3 frames (mocap is smooth), keeping unit variance.
    body_noise = (body_noise[:-2] + 2 * body_noise[1:-1] + body_noise[2:]) / np.sqrt(6.0)
    body = scales["pose_mean"] + scales["pose_std"] * body_norm(scene.body_drivers, body_noise)
    face = scales["code_mean"] + scales["code_std"] * face_norm(
        scene.face_drivers, noise_rng.standard_normal((frames, FACE_DIM))
    )
    missing = np.arange(frames, dtype=np.int64) if faceless else scene.missing
    face[missing] = scales["code_mean"]
    for suffix, array in (
        ("body_pose", body.astype(np.float32)),
        ("face_expression", face.astype(np.float32)),
        ("missing_face_frames", missing),
    ):
        with _atomic_open(out_dir / f"{name}_{suffix}.npy") as handle:
            np.save(handle, array, allow_pickle=False)

    onsets = scene.syllables[0]["onset"]
    write_npz_atomic(
        out_dir / f"{name}_synthetic_truth.npz",
        {
            "lip": scene.lip.astype(np.float32),
            "onset_frames": onsets // SAMPLES_PER_FRAME,
            "onset_seconds": onsets / SAMPLE_RATE,
            "partner_active": scene.partner_active,
            "stroke_frames": scene.strokes["frame"],
            "stroke_prototypes": scene.strokes["prototype"],
        },
    )
