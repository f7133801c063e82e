"""Charts as inline SVG drawn on the server (no script, no CDN): a bar chart and a line chart, each
a template helper returning markup; the page puts the numbers' table beneath each."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH = 640, 22, 6, 170
PLOT_HEIGHT, MARGIN = 200, 40
COLOURS = ("#1d6fa5", "#4c9f70", "#d08700", "#b5494a")


def _number(value) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def bar_chart(title: str, labels: Sequence, series: dict[str, Sequence], unit: str = "") -> Markup:
    """Horizontal bars, one group per label and one bar per series (e.g. leads and conversions)."""
    names = list(series)
    values = {name: [_number(v) for v in series[name]] for name in names}
    top = max([v for vals in values.values() for v in vals] + [0.0]) or 1.0
    group = BAR_HEIGHT * len(names) + GAP
    height = MARGIN + group * len(labels) + GAP
    plot = WIDTH - LABEL_WIDTH - 60
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, name in enumerate(names):  # the legend
        x = LABEL_WIDTH + i * 140
        parts.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="33" font-size="11">{escape(name)}</text>')
    for row, label in enumerate(labels):
        y0 = MARGIN + row * group
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y0 + group / 2}" font-size="12" text-anchor="end" '
            f'dominant-baseline="middle">{escape(str(label))[:28]}</text>'
        )
        for i, name in enumerate(names):
            value = values[name][row]
            width = plot * value / top
            y = y0 + i * BAR_HEIGHT
            parts.append(
                f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT - 4}" '
                f'fill="{COLOURS[i % len(COLOURS)]}">'
                f"<title>{escape(name)}: {_fmt(value)}{escape(unit)}</title></rect>"
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{y + BAR_HEIGHT / 2}" font-size="11" '
                f'dominant-baseline="middle">{_fmt(value)}{escape(unit)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(title: str, labels: Sequence, series: dict[str, Sequence], unit: str = "") -> Markup:
    """One line per series over the labels (e.g. weeks); a missing value breaks the line."""
    names = list(series)
    known = [_number(v) for name in names for v in series[name] if v is not None]
    top = max([*known, 0.0]) or 1.0
    height = PLOT_HEIGHT + 2 * MARGIN + 20
    left, plot_width = 50, WIDTH - 110  # room for the last label, centred on its point
    step = plot_width / max(len(labels) - 1, 1)

    def point(index: int, value: float) -> tuple[float, float]:
        return left + index * step, MARGIN + PLOT_HEIGHT * (1 - value / top)

    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{MARGIN + PLOT_HEIGHT}" x2="{left + plot_width}" y2="{MARGIN + PLOT_HEIGHT}" '
        f'stroke="#999"/>',
        f'<text x="{left - 6}" y="{MARGIN}" font-size="11" text-anchor="end">'
        f"{_fmt(top)}{escape(unit)}</text>",
        f'<text x="{left - 6}" y="{MARGIN + PLOT_HEIGHT}" font-size="11" text-anchor="end">0</text>',
    ]
    for index, label in enumerate(labels):
        x, _ = point(index, 0)
        parts.append(
            f'<text x="{x:.1f}" y="{MARGIN + PLOT_HEIGHT + 16}" font-size="10" text-anchor="middle">'
            f"{escape(str(label))}</text>"
        )
    for i, name in enumerate(names):
        colour = COLOURS[i % len(COLOURS)]
        segments, current = [], []
        for index, value in enumerate(series[name]):
            if value is None:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append(point(index, _number(value)))
        if current:
            segments.append(current)
        for segment in segments:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            parts.append(
                f'<polyline class="line" fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            )
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in segment]
        parts.append(
            f'<text x="{left + i * 160}" y="{height - 4}" font-size="11" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
