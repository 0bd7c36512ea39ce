"""The one way a time becomes text and back: ISO 8601 in UTC.

The ledger, manifests, notices and the CLI store and compare times as text, so every writer uses ``to_text``:
always UTC (``+00:00``), to the microsecond when there is one. Such texts sort as the times do (a whole second,
``…:05+00:00``, sorts before ``…:05.1+00:00`` because ``+`` < ``.``), and texts written before this helper
existed (UTC, to the second) read and compare the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["day_of", "now_text", "parse_time", "short", "to_text", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """``moment`` as stored text: ISO 8601 in UTC (a naive value is taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def now_text() -> str:
    """The current time as stored text."""
    return to_text(utc_now())


def parse_time(text: str | None) -> datetime | None:
    """Stored text back to an aware datetime; None for an empty or unreadable text."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day_of(moment: datetime) -> str:
    """The UTC day of ``moment`` as ``YYYY-MM-DD`` (partition values)."""
    return to_text(moment)[:10]


def short(moment: datetime) -> str:
    """``moment`` for people: ``YYYY-MM-DD HH:MMZ`` in UTC."""
    return to_text(moment)[:16].replace("T", " ") + "Z"
