"""Time in UTC, the only zone moorage stores."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time made timezone-aware: SQLite hands back naive datetimes, all in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
