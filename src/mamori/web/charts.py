"""A tiny server-side SVG line-chart renderer (no JavaScript, nothing loaded from outside)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "line_chart"]

# Okabe-Ito colours (distinguishable with colour-vision deficiencies), black moved up and its sky blue and orange
# darkened so every line has at least 3:1 contrast on white (WCAG 1.4.11, non-text contrast).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#A66F00", "#2B8CC4")


def _fmt(v: float) -> str:
    if v == 0 or 0.01 <= abs(v) < 10_000:
        return f"{v:.3g}"
    return f"{v:.2e}"


def line_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str, x_label: str,
               y_label: str, chart_id: str, width: int = 560, height: int = 260) -> str:
    """An accessible inline SVG line chart.

    Parameters
    ----------
    series : sequence of (str, sequence of (float, float))
        Named series of ``(x, y)`` points; non-finite points are skipped.
    title : str
        Chart title (also the SVG's accessible name).
    x_label, y_label : str
        Axis labels.
    chart_id : str
        Unique id prefix within the page.
    width, height : int, default=560 and 260
        Size in pixels (the SVG scales with its container); the height grows by 16 for each legend row
        after the first (legend entries wrap so none is cut off).

    Returns
    -------
    str
        SVG markup (escape-safe: every text is HTML-escaped).
    """
    pts = [(x, y) for _, s in series for x, y in s if math.isfinite(x) and math.isfinite(y)]
    left, right, bottom = 56, 16, 44
    # Legend entries flow in rows between the title and the plot, so no entry is cut off or hides a line.
    legend: list[tuple[float, int]] = []
    lx, row = float(left), 0
    for name, _ in series:
        w = 24 + 6.5 * len(name)  # swatch, gap and an estimate of the text width at 11 px
        if lx + w > width - right and lx > left:
            lx, row = float(left), row + 1
        legend.append((lx, row))
        lx += w + 8
    top = 28 + 16 * (row + 1) if series else 28
    height += top - 28
    pw, ph = width - left - right, height - top - bottom
    tid = escape(chart_id)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{tid}-title" '
           f'xmlns="http://www.w3.org/2000/svg"><title id="{tid}-title">{escape(title)}</title>',
           f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>']
    if not pts:
        out.append(f'<text x="{left}" y="{top + ph / 2}">no data</text></svg>')
        return "".join(out)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(0.0, min(p[1] for p in pts)), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#ffffff" stroke="#595959"/>')
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#d9d9d9"/>'
                   f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end" class="tick">{_fmt(yv)}</text>')
    ticks = sorted({p[0] for p in pts})
    step = max(1, math.ceil(len(ticks) / 10))
    for xv in ticks[::step]:
        out.append(f'<text x="{sx(xv):.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">{_fmt(xv)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>'
               f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_label)}</text>')
    for k, (name, s) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        good = [(x, y) for x, y in s if math.isfinite(x) and math.isfinite(y)]
        if not good:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                   f'<title>{escape(name)}</title></polyline>')
        out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in good)
        lx, row = legend[k]
        ly = 26 + 16 * row
        out.append(f'<rect x="{lx:.1f}" y="{ly}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14:.1f}" y="{ly + 9}" class="legend">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
