"""How the console writes sizes, digests, times and messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moorage.console.formatting import ago, duration, human_size, sentence, short_digest, when

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def test_service_messages_become_sentences() -> None:
    assert sentence("passwords are 8 to 256 characters long") == (
        "Passwords are 8 to 256 characters long."
    )
    assert sentence("Already one?") == "Already one?"
    assert sentence("") == ""


def test_sizes_use_decimal_units() -> None:
    assert human_size(0) == "0 B"
    assert human_size(999) == "999 B"
    assert human_size(2_100) == "2.1 kB"
    assert human_size(394_400) == "394.4 kB"
    assert human_size(5_300_000_000) == "5.3 GB"
    assert human_size(None) == "—"


def test_digests_are_shortened_to_twelve_hex_digits() -> None:
    assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert short_digest(None) == "—"


def test_times() -> None:
    assert when(NOW) == "2025-05-01 12:00 UTC"
    assert ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert ago(NOW - timedelta(minutes=1), NOW) == "1 minute ago"
    assert ago(NOW - timedelta(hours=5, minutes=3), NOW) == "5 hours ago"
    assert ago(NOW + timedelta(days=6, hours=1), NOW) == "in 6 days"
    assert ago(None, NOW) == "never"


def test_durations() -> None:
    assert duration(2.4) == "2 s"
    assert duration(65) == "1 min 05 s"
    assert duration(3 * 3600 + 120) == "3 h 02 min"
    assert duration(None) == "—"
