"""The HTML report is self-contained: table, embedded PNGs, no links."""

import base64
import re

import numpy as np
from matplotlib.figure import Figure

from audio2photoreal_pipelines.evaluation import report


def _figure(values):
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot(values)
    return fig


def test_figure_to_png_bytes_is_png():
    assert report.figure_to_png_bytes(_figure([0, 1])).startswith(b"\x89PNG\r\n\x1a\n")


def test_report_embeds_table_and_every_figure_without_links():
    rows = [{"method": "ours", "FD_g": 1.23456, "BC": None}, {"method": "<Random>", "FD_g": 9.0}]
    figures = {"traj": _figure(np.arange(5)), "pca": _figure([3, 1, 2])}
    page = report.render_html_report(rows, figures, title="Eval & report", notes="synthetic")
    assert "<table" in page and "<td>1.235</td>" in page and "<td>ours</td>" in page
    assert "&lt;Random&gt;" in page and "<title>Eval &amp; report</title>" in page
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(figures)
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert not re.search(r"https?://", page)
