"""Quoting client-supplied text inside error messages."""

from __future__ import annotations

SHOWN_MAX = 80
"""The most characters of a client's value an error message repeats."""


def shown(text: str) -> str:
    """Quote text for an error message, cut short so a hostile value cannot flood a log."""
    if len(text) > SHOWN_MAX:
        text = text[:SHOWN_MAX] + "..."
    return repr(text)
