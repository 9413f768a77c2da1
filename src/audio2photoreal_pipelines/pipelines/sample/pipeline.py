"""``sample``: audio → generated face and body motion, several samples per clip.

::

    scenes, face_masks, data_stats, audio_features, test_chunks, user_audio, vq_wav2vec,
    params:sample
        └─► prepare_inputs ─► sample_inputs   (user_audio: --params sample.audio=<file>)
    vq.model, guide.model, face.model, pose.model (registry) + sample_inputs
        └─► sample_motion ─► samples, sampled_versions
    samples ─► to_upstream_results ─► results_body, results_face (upstream results.npy)
"""

from kedro.pipeline import Node, Pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """The sample pipeline."""
    return Pipeline(
        [
            Node(
                nodes.prepare_inputs,
                inputs=[
                    "scenes",
                    "face_masks",
                    "data_stats",
                    "audio_features",
                    "test_chunks",
                    "user_audio",
                    "vq_wav2vec",
                    "params:sample",
                    "params:audio_features",
                ],
                outputs="sample_inputs",
                name="prepare_inputs",
            ),
            Node(
                nodes.sample_motion,
                inputs=[
                    "vq.model",
                    "guide.model",
                    "face.model",
                    "pose.model",
                    "sample_inputs",
                    "data_stats",
                    "params:sample",
                ],
                outputs=["samples", "sampled_versions"],
                name="sample_motion",
            ),
            Node(
                nodes.to_upstream_results,
                inputs=["samples", "sample_inputs", "data_stats"],
                outputs=["results_body", "results_face"],
                name="to_upstream_results",
            ),
        ]
    )
