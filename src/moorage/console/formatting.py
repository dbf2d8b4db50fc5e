"""How the console writes numbers, times, digests and messages for people. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from moorage.clock import as_utc, utc_now

SIZE_UNITS = ("B", "kB", "MB", "GB", "TB")
SHORT_DIGEST_HEX = 12


def sentence(message: str) -> str:
    """A service message as a sentence: capital first letter, full stop at the end."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def human_size(size: int | None) -> str:
    """`1.4 MB`: decimal units, as registries and `docker images` show sizes."""
    if size is None:
        return "—"
    value = float(size)
    for unit in SIZE_UNITS:
        if value < 1000 or unit == SIZE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def short_digest(digest: str | None) -> str:
    """`sha256:0123456789ab`: the algorithm and the first hex digits, enough to tell apart."""
    if not digest:
        return "—"
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:SHORT_DIGEST_HEX]}"


def when(moment: datetime | None) -> str:
    """`2025-05-01 14:03 UTC`."""
    if moment is None:
        return "—"
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime | None) -> str:
    """The machine-readable time for a `<time datetime>` attribute."""
    return "" if moment is None else as_utc(moment).isoformat()


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`3 minutes ago`, `in 6 days`: a time relative to now, to the largest unit."""
    if moment is None:
        return "never"
    delta = (now or utc_now()) - as_utc(moment)
    future = delta < timedelta(0)
    seconds = abs(int(delta.total_seconds()))
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def duration(seconds: float | None) -> str:
    """`1 min 05 s`, `42 s`: how long something took."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    minutes, rest = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {rest:02d} s"
    return f"{rest} s"


FILTERS: dict[str, Callable[..., Any]] = {
    "human_size": human_size,
    "short_digest": short_digest,
    "when": when,
    "iso": iso,
    "ago": ago,
    "duration": duration,
}
