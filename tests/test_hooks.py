"""Project hooks: one run at a time per project."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audio2photoreal_pipelines.hooks import (
    ProjectRunLockError,
    ProjectRunLockHook,
    TrackingServerUnreachable,
    check_tracking_server,
)
from audio2photoreal_pipelines.training.distributed import free_port


def test_the_run_lock_is_held_for_the_run_and_released_after_it(tmp_path):
    params = {"project_path": str(tmp_path)}
    first, second = ProjectRunLockHook(), ProjectRunLockHook()
    first.before_pipeline_run(params)
    assert (tmp_path / "data" / ".kedro-run.pid").read_text() == f"{os.getpid()}\n"
    with pytest.raises(ProjectRunLockError, match=f"pid {os.getpid()}"):
        second.before_pipeline_run(params)
    first.after_pipeline_run()
    second.before_pipeline_run(params)  # free again
    second.on_pipeline_error()  # a failed run releases it too
    first.before_pipeline_run(params)
    first.after_pipeline_run()


def test_an_unreachable_tracking_server_is_one_line_within_seconds():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(TrackingServerUnreachable) as raised:
        check_tracking_server(uri, timeout_seconds=2)
    assert time.monotonic() - started < 10  # MLflow's own retries take about four minutes
    message = str(raised.value)
    assert message.startswith(f"the MLflow tracking server {uri} cannot be reached")
    assert "\n" not in message and "conf/local/mlflow.yml" in message


def test_a_server_that_answers_and_local_stores_are_accepted():
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):  # any answer means the server is there
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_tracking_server(f"http://127.0.0.1:{server.server_port}", timeout_seconds=2)
    finally:
        server.shutdown()
    for uri in ("sqlite:///mlflow.db", "file:///tmp/mlruns", None):
        check_tracking_server(uri, timeout_seconds=2)
