"""Byte ranges: the Content-Range of upload chunks, the Range of blob reads, and their replies."""

from __future__ import annotations

import re

from moorage.errors import RangeInvalidError
from moorage.oci.quoting import shown

# Nineteen digits reach past any real blob size and keep int() clear of its digit limit.
_POSITION = r"[0-9]{1,19}"
_CONTENT_RANGE = re.compile(
    rf"(?:bytes +)?(?P<start>{_POSITION})-(?P<end>{_POSITION})(?:/(?P<total>{_POSITION}|\*))?",
    re.IGNORECASE,
)
_BYTE_RANGE = re.compile(rf"(?P<start>{_POSITION})?-(?P<end>{_POSITION})?")


def parse_content_range(header: str) -> tuple[int, int]:
    """Parse an upload chunk's Content-Range into its inclusive (start, end) byte positions."""
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise RangeInvalidError(
            f"Content-Range {shown(header)} is malformed: expected 'START-END' with"
            " non-negative whole numbers, optionally as 'bytes START-END/TOTAL'"
        )
    start, end = int(match["start"]), int(match["end"])
    if end < start:
        raise RangeInvalidError(f"Content-Range {shown(header)} ends before it starts")
    total = match["total"]
    if total is not None and total != "*" and end >= int(total):
        raise RangeInvalidError(
            f"Content-Range {shown(header)} ends at or past its own total length"
        )
    return start, end


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse a blob read's Range into inclusive (start, end) within `size` bytes.

    Returns None when the whole blob should be sent: a blank header, or a range unit other
    than bytes, which RFC 9110 tells servers to ignore.
    """
    unit, equals, ranges = header.strip().partition("=")
    if not unit and not equals:
        return None
    if not equals or not unit.strip():
        raise RangeInvalidError(f"Range {shown(header)} is malformed: expected 'bytes=...'")
    if unit.strip().lower() != "bytes":
        return None
    if "," in ranges:
        raise RangeInvalidError("multiple ranges are not supported")
    match = _BYTE_RANGE.fullmatch(ranges.strip())
    if match is None or (match["start"] is None and match["end"] is None):
        raise RangeInvalidError(
            f"Range {shown(header)} is malformed: expected 'bytes=START-END',"
            " 'bytes=START-' or 'bytes=-SUFFIX'"
        )
    if match["start"] is None:
        return _suffix_range(header, int(match["end"]), size)
    start = int(match["start"])
    end = size - 1 if match["end"] is None else int(match["end"])
    if match["end"] is not None and end < start:
        raise RangeInvalidError(f"Range {shown(header)} ends before it starts")
    if start >= size:
        raise RangeInvalidError(
            f"Range {shown(header)} starts at or past the end of a {size}-byte blob"
        )
    return start, min(end, size - 1)


def _suffix_range(header: str, suffix: int, size: int) -> tuple[int, int]:
    """Resolve `bytes=-SUFFIX`, the last `suffix` bytes, against a blob of `size` bytes."""
    if suffix == 0 or size == 0:
        raise RangeInvalidError(f"Range {shown(header)} asks for no bytes of a {size}-byte blob")
    return max(size - suffix, 0), size - 1


def content_range_header(start: int, end: int, size: int) -> str:
    """Return the Content-Range value for bytes `start` to `end` inclusive of a `size`-byte blob."""
    return f"bytes {start}-{end}/{size}"


def unsatisfiable_range_header(size: int) -> str:
    """Return the Content-Range value that goes with a 416 reply for a `size`-byte blob."""
    return f"bytes */{size}"


def upload_range_header(size: int) -> str:
    """Return an upload's Range header for `size` bytes received; OCI writes '0-0' for none."""
    return f"0-{max(size - 1, 0)}"
