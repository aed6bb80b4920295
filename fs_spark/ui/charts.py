"""Small server-rendered SVG charts: a figure over feature versions, and a model's metric over
time with markers for what changed upstream. No script and no assets: the page carries them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

WIDTH, HEIGHT, PAD = 720, 240, 56
# Each kind of marker has its handle in a lane of its own above the chart, so markers of events
# that happened moments apart (a quarantine and its rollback) can each be clicked.
_LANES = {"feature_version": 0, "schema_change": 1, "quarantine": 2, "rollback": 3}


@dataclass(frozen=True)
class Marker:
    """A vertical line on a time chart: an event upstream of the model, linked to what changed."""

    at: datetime
    kind: str  # feature_version, schema_change, quarantine, rollback
    label: str
    href: str


def _scale(values: Sequence[float], low_px: float, high_px: float):
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return lambda v: low_px + (v - low) / span * (high_px - low_px)


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def series_chart(title: str, points: Sequence[tuple[int, float | None]], unit: str = "") -> str:
    """A line of `points` (version number, value); versions without a value leave a gap."""
    known = [(n, v) for n, v in points if v is not None]
    if not known:
        return f'<p class="empty">{html.escape(title)}: no values</p>'
    x = _scale([n for n, _ in points], PAD, WIDTH - PAD)
    y = _scale([v for _, v in known], HEIGHT - PAD, PAD)
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(n):.1f},{y(v):.1f}" for i, (n, v) in enumerate(known))
    dots = "".join(
        f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3"><title>#{n}: {v:.6g}{unit}</title></circle>' for n, v in known
    )
    low, high = min(v for _, v in known), max(v for _, v in known)
    return (
        f'<svg class="chart" data-title="{html.escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img"><title>{html.escape(title)}</title>'
        f'<text x="{PAD}" y="16" class="title">{html.escape(title)}</text>'
        f'<text x="4" y="{PAD}" class="axis">{high:.4g}</text><text x="4" y="{HEIGHT - PAD}" class="axis">{low:.4g}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}" class="axis">#{points[0][0]}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="axis" text-anchor="end">#{points[-1][0]}</text>'
        f'<path d="{path}" class="line"/>{dots}</svg>'
    )


def timeline_chart(title: str, points: Sequence[tuple[datetime, float, str]], markers: Sequence[Marker]) -> str:
    """A metric over time (`points`: when, value, label) with `markers` as linked vertical lines."""
    times = [p[0].timestamp() for p in points] + [m.at.timestamp() for m in markers]
    if not times:
        return f'<p class="empty">{html.escape(title)}: nothing recorded</p>'
    x = _scale(times, PAD, WIDTH - PAD)
    parts = []
    taken: dict[str, float] = {}  # per lane, the right edge of its last handle
    for marker in sorted(markers, key=lambda m: m.at):
        at = x(marker.at.timestamp())
        lane = _LANES.get(marker.kind, len(_LANES))
        handle = max(at - 5, taken.get(marker.kind, -1e9) + 2)  # handles of one kind never cover each other
        taken[marker.kind] = handle + 10
        top = PAD - 34 + 11 * lane
        parts.append(
            f'<a href="{html.escape(marker.href)}" class="marker {marker.kind}" data-kind="{marker.kind}">'
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{top + 10}" y2="{HEIGHT - PAD}"/>'
            f'<rect x="{handle:.1f}" y="{top}" width="10" height="10"/>'
            f"<title>{html.escape(marker.label)} ({marker.at:%Y-%m-%d %H:%M:%S})</title></a>"
        )
    if points:
        y = _scale([p[1] for p in points], HEIGHT - PAD, PAD)
        ordered = sorted(points)
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(t.timestamp()):.1f},{y(v):.1f}" for i, (t, v, _) in enumerate(ordered)
        )
        parts.append(f'<path d="{path}" class="line"/>')
        low, high = min(p[1] for p in points), max(p[1] for p in points)
        parts.append(f'<text x="4" y="{PAD + 4}" class="axis">{high:.4g}</text>')
        parts.append(f'<text x="4" y="{HEIGHT - PAD}" class="axis">{low:.4g}</text>')
        parts += [
            f'<circle class="point" cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="4">'
            f"<title>{html.escape(label)}: {v:.6g}</title></circle>"
            for t, v, label in ordered
        ]
    return (
        f'<svg class="chart timeline" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img"><title>{html.escape(title)}</title>'
        f'<text x="{WIDTH - PAD}" y="12" class="title" text-anchor="end">{html.escape(title)}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}" class="axis">{_time(min(times))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="axis" text-anchor="end">{_time(max(times))}</text>'
        f"{''.join(parts)}</svg>"
    )
