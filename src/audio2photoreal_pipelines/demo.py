"""A local web page that turns audio into a registered person's motion (Gradio).

    python -m audio2photoreal_pipelines.demo [--person SYN001] [--alias champion] [--port 7860]

It loads ``models:/a2p-<person>-sampler@<alias>`` from the MLflow registry (``MLFLOW_TRACKING_URI``,
default ``sqlite:///mlflow.db``) and samples with that model's own code. For each repetition the
page shows the audio envelope with the face's motion, the body's joint angles with the 1 fps guide
poses, and an animation of the joint angles; ``results.npy`` downloads in upstream's layout.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import gradio as gr
import mlflow
import numpy as np
import soundfile as sf
from matplotlib import animation
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException

from audio2photoreal_pipelines.data.normalise import audio_mean_std, denormalise
from audio2photoreal_pipelines.evaluation.plots import frame_envelope, most_active_dims
from audio2photoreal_pipelines.pipelines.sample.nodes import to_upstream_results
from audio2photoreal_pipelines.serving import PersonSampler
from audio2photoreal_pipelines.units import FPS

ANIMATION_FPS = 10
ANIMATION_SECONDS = 8
ABOUT_ANIMATION = (
    "The animation shows the body's 16 most active joint angles (of its 104) as bars over time. "
    "It is a view of the numbers the model makes, not a rendered person: upstream's photoreal "
    "renderer takes the downloaded `results.npy`."
)


@lru_cache(maxsize=4)
def load_sampler(person: str, alias: str) -> PersonSampler:
    """The registered sampler of `person` under `alias`, or a readable error."""
    uri = f"models:/a2p-{person}-sampler@{alias}"
    try:
        return mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except MlflowException as err:
        raise gr.Error(
            f"No model at {uri}: {str(err).splitlines()[0]} Train and evaluate the person first "
            "(make run)."
        ) from None


def plot_audio_and_face(audio: np.ndarray, face: np.ndarray) -> Figure:
    """Envelopes of raw audio (N, 2) and the face codes' speed per repetition (R, T, 256)."""
    fig = Figure(figsize=(9, 3), layout="constrained")
    ax = fig.subplots()
    for channel, (label, colour) in enumerate([("person", "black"), ("partner", "tab:gray")]):
        envelope = frame_envelope(audio[:, channel])
        ax.plot(
            np.arange(len(envelope)) / FPS,
            envelope / (envelope.max() + 1e-8),
            colour,
            lw=1,
            label=f"audio envelope, {label}",
        )
    speed = np.linalg.norm(np.diff(face, axis=1), axis=-1)
    for rep, curve in enumerate(speed):
        ax.plot(
            np.arange(1, curve.size + 1) / FPS,
            curve / (speed.max() + 1e-8),
            alpha=0.7,
            lw=1,
            label=f"face motion, repetition {rep + 1}",
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relative level")
    ax.legend(loc="upper right", fontsize="x-small", ncols=2)
    ax.set_title("Audio, and the face's motion: the speed of its codes, which follow the lips")
    return fig


def plot_body(body: np.ndarray, guide: np.ndarray, num_dims: int = 4) -> Figure:
    """The body's most active joint angles (R, T, 104) with the 1 fps guide poses (R, K, 104)."""
    dims = most_active_dims(body[0][None], num_dims)
    fig = Figure(figsize=(9, 1.6 * num_dims), layout="constrained")
    axes = fig.subplots(num_dims, 1, sharex=True, squeeze=False)[:, 0]
    time = np.arange(body.shape[1]) / FPS
    keyframe_time = np.arange(guide.shape[1])
    for ax, dim in zip(axes, dims, strict=True):
        for rep in range(body.shape[0]):
            line = ax.plot(time, body[rep, :, dim], lw=1, label=f"repetition {rep + 1}")[0]
            ax.plot(
                keyframe_time,
                guide[rep, :, dim],
                "o",
                ms=4,
                color=line.get_color(),
                label="guide poses (1 fps)" if rep == 0 else None,
            )
        ax.set_ylabel(f"joint {dim}")
    axes[0].legend(loc="upper right", fontsize="x-small", ncols=3)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle("Body joint angles; dots are the guide's 1 fps poses")
    return fig


def animate_body(body: np.ndarray, path: Path) -> Path:
    """A GIF of the first repetition's 16 most active joint angles (T, 104) as moving bars."""
    dims = most_active_dims(body[None], 16)
    frames = body[: ANIMATION_SECONDS * FPS : FPS // ANIMATION_FPS][:, dims]
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(range(len(dims)), frames[0], color="tab:blue")
    ax.set_ylim(frames.min() - 0.05, frames.max() + 0.05)
    ax.set_xticks(range(len(dims)), [str(d) for d in dims], fontsize="x-small")
    ax.set_xlabel("joint angle")
    title = ax.set_title("t = 0.0 s")

    def draw(index: int) -> list:
        for bar, height in zip(bars, frames[index], strict=True):
            bar.set_height(height)
        title.set_text(f"t = {index / ANIMATION_FPS:.1f} s")
        return [*bars, title]

    movie = animation.FuncAnimation(fig, draw, frames=len(frames), blit=False)
    movie.save(path, writer=animation.PillowWriter(fps=ANIMATION_FPS))
    return path


def generate(
    audio_path: str | None,
    person: str,
    alias: str,
    repetitions: float,
    seed: float,
    face_guidance: float,
    body_guidance: float,
    sampler: str,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's progress injection)
) -> tuple[Figure, Figure, str, str, str]:
    """One request from the page: plots, animation, results.npy and a status line."""
    if not audio_path:
        raise gr.Error("Upload or record some audio first.")
    progress(0.05, desc="Loading the model")
    model = load_sampler(person.strip(), alias.strip())
    try:
        audio, rate = sf.read(audio_path, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        raise gr.Error(f"{Path(audio_path).name} is not a readable audio file.") from None
    record = {
        "audio": audio[:, 0],
        "partner_audio": audio[:, 1] if audio.shape[1] > 1 else None,
        "sample_rate": rate,
        "num_repetitions": int(repetitions),
        "seed": int(seed),
        "face_guidance": face_guidance,
        "body_guidance": body_guidance,
    }
    progress(0.2, desc="Sampling face and body")
    try:
        samples, inputs = model.generate(record, sampler=sampler)
    except MlflowException as err:
        raise gr.Error(str(err.message)) from None
    progress(0.8, desc="Drawing")
    raw_audio = audio_from_inputs(inputs, model.data_stats)
    folder = Path(tempfile.mkdtemp(prefix="a2p-demo-"))
    animation_path = animate_body(samples["body"][0, 0], folder / "body.gif")
    body_results, _ = to_upstream_results(samples, inputs, model.data_stats)
    results_path = folder / "results.npy"
    np.save(results_path, body_results, allow_pickle=True)
    status = (
        f"a2p-{person}-sampler@{alias}: {int(repetitions)} repetition(s) of "
        f"{samples['body'].shape[2] / FPS:.1f} s, {sampler}."
    )
    return (
        plot_audio_and_face(raw_audio, samples["face"][:, 0]),
        plot_body(samples["body"][:, 0], samples["guide_poses"][:, 0]),
        str(animation_path),
        str(results_path),
        status,
    )


def audio_from_inputs(inputs: dict[str, np.ndarray], data_stats: dict) -> np.ndarray:
    """The model's normalised audio (1, N, 2) back in raw units (N, 2)."""
    mean, std = audio_mean_std(data_stats)
    return denormalise(inputs["audio"][0], mean, std)


def build_demo(person: str = "SYN001", alias: str = "champion") -> gr.Blocks:
    """The page: inputs on the left, results on the right."""
    with gr.Blocks(title="audio2photoreal-pipelines demo") as page:
        gr.Markdown(
            "# audio2photoreal-pipelines\nUpload or record a conversation's audio (mono is the "
            "person; a second channel is the partner) and sample the registered person's motion."
        )
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="audio")
                person_box = gr.Textbox(person, label="person")
                alias_box = gr.Textbox(alias, label="registry alias")
                repetitions = gr.Slider(1, 5, value=2, step=1, label="repetitions")
                seed = gr.Number(10, precision=0, label="seed")
                face_guidance = gr.Number(2.0, label="face guidance")
                body_guidance = gr.Number(2.0, label="body guidance")
                sampler = gr.Dropdown(["dpmsolver", "ddim"], value="dpmsolver", label="sampler")
                run = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="status")
                face_plot = gr.Plot(label="audio and face", elem_id="face-plot")
                body_plot = gr.Plot(label="body", elem_id="body-plot")
                gr.Markdown(ABOUT_ANIMATION)
                movie = gr.Image(label="body animation", type="filepath", elem_id="animation")
                results = gr.File(label="results.npy (upstream's layout)", elem_id="results")
        run.click(
            generate,
            inputs=[
                audio,
                person_box,
                alias_box,
                repetitions,
                seed,
                face_guidance,
                body_guidance,
                sampler,
            ],
            outputs=[face_plot, body_plot, movie, results, status],
        )
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--person", default="SYN001")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    build_demo(args.person, args.alias).queue().launch(
        server_name=args.host, server_port=args.port, show_error=False
    )


if __name__ == "__main__":
    main()
