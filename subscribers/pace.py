"""Rates, ETAs and ages in words, the one way every page, log line and door says them."""

from __future__ import annotations

from datetime import datetime


def eta_seconds(remaining: float, rate: float | None) -> float | None:
    """Seconds to do ``remaining`` at ``rate`` per second (None without a positive rate)."""
    if rate is None or rate <= 0:
        return None
    return max(0.0, remaining) / rate


def duration(seconds: float) -> str:
    """A duration as people say it: "45 s", "4 min", "2 h 5 min", "3 d"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours, rest = divmod(int(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{hours // 24} d"


def ago(moment: datetime, now: datetime) -> str:
    """How long ago (or from now) ``moment`` is: "4 min ago", "in 12 s"."""
    delta = (now - moment).total_seconds()
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"
