"""Data-parallel training over several machines, launched by ``torchrun``.

::

    torchrun --nnodes 2 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m audio2photoreal_pipelines.torchrun_train train_pose --params "pose.train.batch_size=8"
    kedro run --pipelines train_pose --params "pose.train.batch_size=8"

Every process torchrun starts loads one training pipeline's inputs from the catalog, runs its
nodes in memory as one rank of torchrun's group (each rank draws its own windows; DDP averages
the gradients) and saves nothing: rank 0 alone writes the checkpoints. Nothing is tracked or
registered here, since a `kedro run` tracks exactly one MLflow run. The ``kedro run`` that
follows, with the same ``--env`` and ``--params``, finds the final checkpoint (the folder's hash
covers the same parameters), resumes there with nothing left to train, and tracks and registers
one version as usual. A killed torchrun job resumes from its last checkpoint when started again,
with any number of processes.

Every machine needs the project with its ingested data and, for the guide and the body, the
registered VQ; rank 0's checkpoints must reach the machine that runs ``kedro run``. A project
folder shared by all machines gives both.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click
import torch
import torch.distributed as dist

# kedro run's own --params parser, so that both commands read the same string the same way.
from kedro.framework.cli.utils import _split_params
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from audio2photoreal_pipelines.training.config import TrainConfig
from audio2photoreal_pipelines.training.device import select_device
from audio2photoreal_pipelines.training.threads import configure_torch_threads

logger = logging.getLogger(__name__)

TRAINING_PIPELINES = {
    "train_vq": "vq",
    "train_guide": "guide",
    "train_face": "face",
    "train_pose": "pose",
}
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def run_pipeline_in_memory(pipeline: Any, catalog: Any) -> dict[str, Any]:
    """Run `pipeline`'s nodes in order, loading free inputs from `catalog`; save nothing."""
    produced: dict[str, Any] = {}
    for node in pipeline.nodes:
        inputs = {
            name: produced[name] if name in produced else catalog.load(name) for name in node.inputs
        }
        produced.update(node.run(inputs))
    return produced


def _init_group(train: TrainConfig) -> None:
    device = select_device(train.device)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


@click.command()
@click.argument("pipeline", type=click.Choice(sorted(TRAINING_PIPELINES)))
@click.option("--env", "-e", default=None, help="Kedro environment, as for kedro run.")
@click.option("--params", default="", callback=_split_params, help="As for kedro run.")
def main(pipeline: str, env: str | None, params: dict) -> None:
    """Train PIPELINE's model as one rank of a torchrun job (see the module docstring)."""
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise click.UsageError(
            f"{', '.join(missing)} not set: start this module with torchrun "
            "(for one machine, `kedro run` with <model>.train.processes does the same)"
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    configure_torch_threads()
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        catalog = session.load_context().catalog
        namespace = TRAINING_PIPELINES[pipeline]
        train: TrainConfig = catalog.load(f"params:{namespace}.train")
        if train.processes != 1:
            raise click.UsageError(
                f"{namespace}.train.processes must be 1 under torchrun: torchrun starts the "
                "processes (--nproc-per-node)"
            )
        _init_group(train)
        try:
            run_pipeline_in_memory(pipelines[pipeline], catalog)
            dist.barrier()
        finally:
            dist.destroy_process_group()
    if int(os.environ["RANK"]) == 0:
        logger.info(
            "%s trained in %s processes; register it with `kedro run --pipelines %s` and the "
            "same --env and --params",
            namespace,
            os.environ["WORLD_SIZE"],
            pipeline,
        )


if __name__ == "__main__":
    main()
