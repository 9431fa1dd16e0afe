"""Server-drawn SVG charts for the dashboard: shapes and labels only, no script, so they
render under the console's content security policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

# The badges' colours: each at least 3:1 against the white background (WCAG 1.4.11).
COLOURS = {"allow": "#276130", "review": "#7a4f00", "block": "#a4262c"}
_BAR = "#4a6fa5"


def stacked_days(
    days: Sequence[str],
    per_day: Mapping[str, Sequence[int]],
    names: Mapping[str, str] | None = None,
    label: str = "checks per day by decision",
) -> str:
    """Checks per day, one stacked column per day, one colour per decision (``names``:
    the decisions as the page words them)."""
    names = names or {d: d for d in COLOURS}
    width, height, left, bottom, top = 720, 240, 40, 40, 16
    totals = [sum(per_day[d][n] for d in per_day) for n in range(len(days))]
    peak = max([*totals, 1])
    step = (width - left - 10) / max(len(days), 1)
    scale = (height - bottom - top) / peak
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" class="plot">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#888"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>',
    ]
    for n, day in enumerate(days):
        x = left + n * step + step * 0.15
        y = float(height - bottom)
        for decision in ("allow", "review", "block"):
            count = per_day.get(decision, [0] * len(days))[n]
            if not count:
                continue
            h = count * scale
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[decision]}">'
                f"<title>{escape(day)}: {count} {escape(names[decision])}</title></rect>"
            )
        if len(days) <= 16 or n % max(1, len(days) // 8) == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 14}" font-size="10" '
                f'text-anchor="middle">{escape(day[5:])}</text>'
            )
    for n, decision in enumerate(("allow", "review", "block")):
        parts.append(
            f'<rect x="{left + n * 90}" y="{height - 14}" width="10" height="10" '
            f'fill="{COLOURS[decision]}"/><text x="{left + n * 90 + 14}" y="{height - 5}" '
            f'font-size="11">{escape(names[decision])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars(items: Sequence[tuple[str, int]], unit: str) -> str:
    """Horizontal bars, one a row, labelled with the name and the count."""
    if not items:
        return ""
    row, label, width = 22, 180, 720
    height = row * len(items) + 8
    peak = max([count for _, count in items] + [1])
    span = width - label - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(unit)}" class="plot">'
    ]
    for n, (name, count) in enumerate(items):
        y = 4 + n * row
        shown = name if len(name) <= 26 else name[:25] + "…"
        w = max(1.0, count / peak * span)
        parts.append(
            f'<text x="{label - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{escape(shown)}</text>"
            f'<rect x="{label}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="{_BAR}">'
            f"<title>{escape(name)}: {count} {escape(unit)}</title></rect>"
            f'<text x="{label + w + 6:.1f}" y="{y + 14}" font-size="12">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
