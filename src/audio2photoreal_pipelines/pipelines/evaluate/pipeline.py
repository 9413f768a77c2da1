"""``evaluate``: score the samples and the baselines, report, and promote the better models.

::

    scenes, splits, sample_inputs ─► build_baseline_pool ─► baseline_pool ─► make_baselines ─┐
    scenes, synthetic_truth ─► fit_lip_readout ─► lip_readout                                 │
    test_chunks, synthetic_truth ─► clip_truth ─► evaluation_truth                            │
    samples + baseline_samples + lip_readout + evaluation_truth ─► score ◄────────────────────┘
        ├─► metrics_table (JSON, MLflow artifact), metrics_markdown, evaluation_metrics (MLflow)
        └─► make_report ─► evaluation_report (HTML), evaluation_figures (PNG)
    metrics_table + sampled_versions + registry_champions ─► decide_promotion ─► registry_promotions
    sampled_versions + registry_promotions (the champions now) ─► bundle_sampler ─► sampler_model
"""

from kedro.pipeline import Node, Pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """The evaluate pipeline."""
    return Pipeline(
        [
            Node(
                nodes.build_baseline_pool,
                inputs=[
                    "scenes",
                    "face_masks",
                    "data_stats",
                    "audio_features",
                    "splits",
                    "sample_inputs",
                    "params:evaluate",
                ],
                outputs="baseline_pool",
                name="build_baseline_pool",
            ),
            Node(
                nodes.make_baselines,
                inputs=[
                    "baseline_pool",
                    "sample_inputs",
                    "samples",
                    "data_stats",
                    "params:evaluate",
                ],
                outputs="baseline_samples",
                name="make_baselines",
            ),
            Node(
                nodes.fit_lip_readout,
                inputs=["scenes", "face_masks", "synthetic_truth", "splits"],
                outputs="lip_readout",
                name="fit_lip_readout",
            ),
            Node(
                nodes.clip_truth,
                inputs=["test_chunks", "synthetic_truth", "sample_inputs", "data_stats"],
                outputs="evaluation_truth",
                name="clip_truth",
            ),
            Node(
                nodes.score,
                inputs=[
                    "samples",
                    "baseline_samples",
                    "sample_inputs",
                    "data_stats",
                    "lip_readout",
                    "evaluation_truth",
                    "params:evaluate",
                ],
                outputs=["metrics_table", "metrics_markdown", "evaluation_metrics"],
                name="score",
            ),
            Node(
                nodes.make_report,
                inputs=[
                    "metrics_table",
                    "samples",
                    "baseline_samples",
                    "sample_inputs",
                    "data_stats",
                    "lip_readout",
                    "evaluation_truth",
                    "sampled_versions",
                ],
                outputs=["evaluation_report", "evaluation_figures"],
                name="make_report",
            ),
            Node(
                nodes.decide_promotion,
                inputs=[
                    "metrics_table",
                    "sampled_versions",
                    "registry_champions",
                    "params:promotion",
                ],
                outputs="registry_promotions",
                name="decide_promotion",
            ),
            Node(
                nodes.bundle_sampler,
                inputs=[
                    "sampled_versions",
                    "registry_promotions",
                    "data_stats",
                    "params:sample",
                    "params:audio_features",
                ],
                outputs="sampler_model",
                name="bundle_sampler",
            ),
        ]
    )
