"""``ingest``: bring a person's scenes in, check them, and derive what training needs.

::

    params:dataset ─► acquire ─► raw_scenes ─► validate ─► face_masks ─► drop faceless ─► scenes
                              └► synthetic_truth                                           │
    scenes ─► split ─► splits ─► stats ─► data_stats, stats_summary                        │
                            └──► test chunks ─► test_chunks                                │
    scenes + data_stats (+ vq_wav2vec) ─► audio features ─► audio_features ◄───────────────┘
"""

from kedro.pipeline import Node, Pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """The ingest pipeline."""
    return Pipeline(
        [
            Node(
                nodes.acquire_scenes,
                inputs=["params:dataset", "params:synthetic"],
                outputs=["raw_scenes", "synthetic_truth"],
                name="acquire_scenes",
            ),
            Node(
                nodes.validate_scenes,
                inputs="raw_scenes",
                outputs=["validated_scenes", "validation_report"],
                name="validate_scenes",
            ),
            Node(
                nodes.build_face_masks,
                inputs="validated_scenes",
                outputs="face_masks",
                name="build_face_masks",
            ),
            Node(
                nodes.drop_faceless_scenes,
                inputs=["validated_scenes", "face_masks"],
                outputs="scenes",
                name="drop_faceless_scenes",
            ),
            Node(nodes.split, inputs=["scenes", "params:split"], outputs="splits", name="split"),
            Node(
                nodes.compute_stats,
                inputs=["scenes", "face_masks", "splits"],
                outputs=["data_stats", "stats_summary"],
                name="compute_stats",
            ),
            Node(
                nodes.make_test_chunks,
                inputs=["scenes", "splits", "params:test_chunks"],
                outputs="test_chunks",
                name="make_test_chunks",
            ),
            Node(
                nodes.compute_audio_features,
                inputs=["scenes", "data_stats", "vq_wav2vec", "params:audio_features"],
                outputs="audio_features",
                name="compute_audio_features",
            ),
        ]
    )
