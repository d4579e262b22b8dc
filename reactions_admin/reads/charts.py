"""The lag trend drawn as inline SVG, on the server: no script, no CDN, readable offline.

A sparkline per subscriber for the lists, and a larger chart with its scale and time
span for a subscriber's own page. Both take the samples of ``subscribers.history``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from subscribers import history
from subscribers.history import RateAndEta, Sample
from subscribers.pace import duration

LINE = "#417690"  # the admin's own blue
AXIS = "#999"


def _downsample(taken: Sequence[Sample], points: int) -> list[tuple[float, int]]:
    """(seconds since the first sample, lag) pairs, at most ``points``: the largest lag of
    each stretch, so a short spike is not averaged away."""
    if not taken:
        return []
    start = taken[0].at
    pairs = [((s.at - start).total_seconds(), s.lag_events) for s in taken]
    if len(pairs) <= points:
        return pairs
    span = pairs[-1][0] or 1.0
    bins: dict[int, tuple[float, int]] = {}
    for t, lag in pairs:
        key = min(points - 1, int(t / span * points))
        if key not in bins or lag > bins[key][1]:
            bins[key] = (t, lag)
    return [bins[k] for k in sorted(bins)]


def _polyline(
    pairs: list[tuple[float, int]], width: float, height: float, pad: float
) -> tuple[str, int]:
    top = max(lag for _, lag in pairs) or 1
    span = pairs[-1][0] or 1.0
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    coordinates = " ".join(
        f"{pad + t / span * inner_w:.1f},{pad + inner_h - lag / top * inner_h:.1f}"
        for t, lag in pairs
    )
    return coordinates, top


def sparkline(taken: Sequence[Sample], width: int = 120, height: int = 24) -> SafeString:
    """A small lag line (the last samples); a dash when there are fewer than two."""
    pairs = _downsample(taken, width)
    if len(pairs) < 2:
        return format_html('<span class="lag-sparkline" title="{}">—</span>', "no samples yet")
    coordinates, top = _polyline(pairs, width, height, 2)
    return format_html(
        '<svg class="lag-sparkline" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}"'
        ' viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>'
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/></svg>',
        width,
        height,
        width,
        height,
        f"lag trend, peak {top} events",
        f"lag over the last {duration(pairs[-1][0])}, peak {top} events",
        coordinates,
        LINE,
    )


def lag_chart(taken: Sequence[Sample], width: int = 720, height: int = 200) -> SafeString:
    """The larger lag chart: the line, a baseline, the peak and the time span in words."""
    pairs = _downsample(taken, width // 2)
    if len(pairs) < 2:
        return format_html(
            '<p class="lag-chart">{}</p>',
            "No lag samples yet (the worker takes one every few seconds while it runs).",
        )
    pad = 24
    coordinates, top = _polyline(pairs, width, height, pad)
    capped = any(s.lag_capped for s in taken)
    return format_html(
        '<svg class="lag-chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"'
        ' viewBox="0 0 {w} {h}" role="img" aria-label="{label}"><title>{label}</title>'
        '<line x1="{p}" y1="{base}" x2="{right}" y2="{base}" stroke="{axis}"/>'
        '<line x1="{p}" y1="{p}" x2="{p}" y2="{base}" stroke="{axis}"/>'
        '<text x="{tx}" y="{ty}" font-size="11" fill="#666">{peak}</text>'
        '<text x="{p}" y="{bottom}" font-size="11" fill="#666">{since}</text>'
        '<text x="{right}" y="{bottom}" font-size="11" fill="#666" text-anchor="end">now</text>'
        '<polyline points="{points}" fill="none" stroke="{line}" stroke-width="2"/></svg>',
        w=width,
        h=height,
        p=pad,
        base=height - pad,
        right=width - pad,
        bottom=height - 6,
        tx=pad + 4,
        ty=pad - 8,
        axis=AXIS,
        line=LINE,
        points=coordinates,
        peak=f"peak {top}{'+' if capped else ''} events behind",
        since=f"{duration(pairs[-1][0])} ago",
        label=f"lag in events over the last {duration(pairs[-1][0])}, peak {top}",
    )


def rate_text(estimate: RateAndEta) -> str:
    """The throughput and the ETA in words: "120 events/s, caught up in ~3 min"."""
    if estimate.events_per_second is None:
        return "rate: not enough samples yet"
    text = f"{estimate.events_per_second:,.1f} events/s"
    if not estimate.behind:
        return text + ", caught up"
    if estimate.eta_seconds is None:
        return text + ", behind and not gaining"
    return text + f", caught up in ~{duration(estimate.eta_seconds)}"


#: The sparkline in the lists covers this much history; the chart on a bookmark's page
#: covers everything kept (history_retention_seconds).
SPARKLINE_SECONDS = 3600.0


def trend(name: str) -> SafeString:
    """Subscriber ``name``'s lag over the last hour as a sparkline, with its rate and ETA
    underneath (the Bookmarks list and the console's home page)."""
    now = timezone.now()
    taken = history.samples(name, now - timedelta(seconds=SPARKLINE_SECONDS))
    recent = now - timedelta(seconds=history.RATE_WINDOW_SECONDS)
    estimate = history.estimate(name, [s for s in taken if s.at >= recent])
    return format_html(
        '{}<br><small class="lag-rate">{}</small>', sparkline(taken), rate_text(estimate)
    )
