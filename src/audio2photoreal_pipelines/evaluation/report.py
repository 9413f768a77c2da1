"""A self-contained HTML report: metric table plus PNG figures embedded as base64 data URIs."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from .table import COLUMNS, format_value

_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:72em}"
    "table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:.3em .6em;"
    "text-align:right}th:first-child,td:first-child{text-align:left}"
    "img{max-width:100%}"
)


def figure_to_png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_html_report(
    table_rows: Sequence[Mapping[str, float | str | None]],
    figures: Mapping[str, Figure],
    *,
    title: str,
    notes: str = "",
) -> str:
    """One HTML page with no external assets: title, notes, metric table, figures."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if notes:
        parts.append(f"<p>{html.escape(notes)}</p>")
    parts.append(_table_html(table_rows))
    for name, fig in figures.items():
        data = base64.b64encode(figure_to_png_bytes(fig)).decode("ascii")
        label = html.escape(name)
        parts.append(f'<h2>{label}</h2><img alt="{label}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table_html(rows: Sequence[Mapping[str, float | str | None]]) -> str:
    """The metric rows as an HTML table with the fixed column order."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(format_value(r.get(c)))}</td>" for c in COLUMNS)
        + "</tr>"
        for r in rows
    )
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
