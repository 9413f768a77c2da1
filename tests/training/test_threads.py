"""The intra-op thread count follows the usable CPUs and the local processes sharing them."""

from __future__ import annotations

import logging

import pytest
import torch

from audio2photoreal_pipelines.hooks import TorchThreadsHook
from audio2photoreal_pipelines.training import threads
from audio2photoreal_pipelines.training.threads import choose_thread_count


@pytest.mark.parametrize(
    ("environ", "cpus", "expected"),
    [
        ({}, 2, 2),
        ({}, 16, 16),
        ({"LOCAL_WORLD_SIZE": "2"}, 16, 8),
        ({"LOCAL_WORLD_SIZE": "4"}, 2, 1),  # never below one thread
        ({"LOCAL_WORLD_SIZE": ""}, 4, 4),
        ({"OMP_NUM_THREADS": "3", "LOCAL_WORLD_SIZE": "2"}, 16, 3),  # the user's choice wins
    ],
)
def test_thread_count(environ, cpus, expected):
    assert choose_thread_count(environ, cpus)[0] == expected


def test_thread_count_uses_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert choose_thread_count({}) == (3, "3 usable CPU(s) shared by 1 local process(es)")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_omp_num_threads_is_named(value):
    with pytest.raises(ValueError, match="OMP_NUM_THREADS must be a positive integer"):
        choose_thread_count({"OMP_NUM_THREADS": value}, 2)


def test_hook_sets_torch_and_logs_once(monkeypatch, caplog):
    previous = torch.get_num_threads()
    monkeypatch.setattr(threads, "_configured", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        with caplog.at_level(logging.INFO, logger=threads.__name__):
            TorchThreadsHook().before_pipeline_run(run_params={})
            TorchThreadsHook().before_pipeline_run(run_params={})
        assert torch.get_num_threads() == 1
        logged = [r.getMessage() for r in caplog.records if "intra-op" in r.getMessage()]
        assert logged == ["torch uses 1 intra-op thread(s) (OMP_NUM_THREADS)"]
    finally:
        torch.set_num_threads(previous)
