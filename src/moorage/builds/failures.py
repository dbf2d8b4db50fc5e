"""Why a build did not succeed, in one line its owner can act on."""

from __future__ import annotations

from typing import Final, Literal

REASON_MAX: Final = 1000

FailedState = Literal["failed", "timed_out", "cancelled"]


class BuildFailedError(Exception):
    """A build ended without an image; `reason` is one line, free of secrets."""

    def __init__(self, reason: str, state: FailedState = "failed") -> None:
        reason = " ".join(reason.split())[:REASON_MAX]
        super().__init__(reason)
        self.reason = reason
        self.state: FailedState = state
