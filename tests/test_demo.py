"""The web demo in a real browser: headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from audio2photoreal_pipelines.serving import SIGNATURE, PersonSampler
from audio2photoreal_pipelines.training.distributed import free_port
from tests.conftest import PROJECT_ROOT, stop, wait_until_serving
from tests.test_serving import untrained_sampler_artifacts, wav_bytes

CHROMIUM = shutil.which("chromium")
SCREENSHOT = PROJECT_ROOT / "data" / "08_reporting" / "demo.png"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (`apt-get install chromium`; CI's .ci/run does)",
    ),
]


@pytest.fixture
def demo_url(tmp_path):
    """The demo serving a registered untrained person, DEMO@champion, on a free port."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    try:
        client = MlflowClient()
        experiment = client.create_experiment("demo", artifact_location=str(tmp_path / "runs"))
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(
                name="sampler",
                python_model=PersonSampler(),
                artifacts=untrained_sampler_artifacts(tmp_path),
                signature=SIGNATURE,
                registered_model_name="a2p-DEMO-sampler",
            )
        client.set_registered_model_alias("a2p-DEMO-sampler", "champion", "1")
    finally:
        mlflow.set_tracking_uri(None)
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "audio2photoreal_pipelines.demo", "--person", "DEMO"]
        + ["--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": store, "OMP_NUM_THREADS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, server, tmp_path / "demo.log", seconds=120)
        yield url
    finally:
        stop(server)
        log.close()


def test_the_page_turns_a_wav_into_plots_an_animation_and_results(demo_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    good = tmp_path / "take.wav"
    good.write_bytes(wav_bytes(3.0, 16_000, 1))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not audio" * 200)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)  # every wait is bounded, by two minutes
            page.goto(demo_url)
            page.locator("input[type=file]").first.set_input_files(str(good))
            page.locator("#generate").click()
            for element in ("#face-plot img", "#body-plot img", "#animation img"):
                expect(page.locator(element).first).to_be_visible()
            expect(page.locator("#status")).to_contain_text("2 repetition(s) of 3.0 s")

            link = page.locator("#results a").first
            expect(link).to_be_visible()
            download = page.request.get(link.get_attribute("href"))
            assert download.ok
            results_path = tmp_path / "results.npy"
            results_path.write_bytes(download.body())
            results = np.load(results_path, allow_pickle=True).item()
            assert results["motions"].shape == (2, 104, 1, 90)
            assert results["keyframes"].shape == (2, 3, 104)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            page.locator("button[aria-label='Clear']").first.click()
            page.locator("input[type=file]").first.set_input_files(str(broken))
            page.locator("#generate").click()
            error = page.locator(".toast-body").first
            expect(error).to_contain_text("broken.wav is not a readable audio file")
            assert "Traceback" not in page.content()
        finally:
            browser.close()
