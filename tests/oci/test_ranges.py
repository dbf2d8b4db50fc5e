"""Tests of moorage.oci.ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.errors import RangeInvalidError
from moorage.oci.ranges import (
    content_range_header,
    parse_content_range,
    parse_range,
    unsatisfiable_range_header,
    upload_range_header,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0-0", (0, 0)),
        ("0-1023", (0, 1023)),
        ("1024-2047", (1024, 2047)),
        ("bytes 0-99", (0, 99)),
        ("Bytes 0-99", (0, 99)),
        ("bytes 0-99/100", (0, 99)),
        ("bytes 0-99/*", (0, 99)),
        ("5-9/200", (5, 9)),
        ("  10-20  ", (10, 20)),
        ("007-010", (7, 10)),
    ],
)
def test_parse_content_range_accepts(header: str, expected: tuple[int, int]) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("", "is malformed"),
        ("5", "is malformed"),
        ("-5", "is malformed"),
        ("5-", "is malformed"),
        ("+1-5", "is malformed"),
        ("1-+5", "is malformed"),
        ("1 - 5", "is malformed"),
        ("bytes=0-5", "is malformed"),
        ("bytes0-5", "is malformed"),
        ("0x1-5", "is malformed"),
        ("1.0-5", "is malformed"),
        ("\u0661-\u0662", "is malformed"),
        ("0-5/", "is malformed"),
        ("0-5/-1", "is malformed"),
        ("1" * 20 + "-" + "1" * 20, "is malformed"),
        ("9-5", "ends before it starts"),
        ("0-100/100", "ends at or past its own total length"),
    ],
)
def test_parse_content_range_refuses(header: str, fragment: str) -> None:
    with pytest.raises(RangeInvalidError) as caught:
        parse_content_range(header)

    assert fragment in caught.value.message


@given(start=st.integers(0, 2**62), length=st.integers(1, 2**40), prefix=st.booleans())
def test_parse_content_range_round_trips(start: int, length: int, prefix: bool) -> None:
    end = start + length - 1
    header = f"bytes {start}-{end}/{end + 1}" if prefix else f"{start}-{end}"

    assert parse_content_range(header) == (start, end)


@given(header=st.text(max_size=60))
def test_parse_content_range_raises_only_range_invalid(header: str) -> None:
    try:
        start, end = parse_content_range(header)
    except RangeInvalidError as error:
        assert error.message
    else:
        assert 0 <= start <= end


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=0-9", 10, (0, 9)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=2-500", 10, (2, 9)),
        ("bytes=3-", 10, (3, 9)),
        ("bytes=9-", 10, (9, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-10", 10, (0, 9)),
        ("bytes=-500", 10, (0, 9)),
        ("BYTES=1-2", 10, (1, 2)),
        (" bytes = 1-2 ", 10, (1, 2)),
    ],
)
def test_parse_range_resolves_against_the_size(
    header: str, size: int, expected: tuple[int, int]
) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["", "   ", "items=0-5", "lines=1-2,3-4"])
def test_parse_range_returns_none_for_the_whole_blob(header: str) -> None:
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(
    ("header", "size", "fragment"),
    [
        ("bytes=10-", 10, "starts at or past the end of a 10-byte blob"),
        ("bytes=10-20", 10, "starts at or past the end"),
        ("bytes=0-", 0, "starts at or past the end of a 0-byte blob"),
        ("bytes=-0", 10, "asks for no bytes"),
        ("bytes=-5", 0, "asks for no bytes of a 0-byte blob"),
        ("bytes=5-3", 10, "ends before it starts"),
        ("bytes=0-1,4-5", 10, "multiple ranges are not supported"),
        ("bytes=0-1, -1", 10, "multiple ranges are not supported"),
        ("bytes=-", 10, "is malformed"),
        ("bytes=", 10, "is malformed"),
        ("bytes=a-b", 10, "is malformed"),
        ("bytes=+1-2", 10, "is malformed"),
        ("bytes=1--2", 10, "is malformed"),
        ("bytes 0-5", 10, "is malformed"),
        ("bytes", 10, "is malformed"),
        ("=0-5", 10, "is malformed"),
    ],
)
def test_parse_range_refuses(header: str, size: int, fragment: str) -> None:
    with pytest.raises(RangeInvalidError) as caught:
        parse_range(header, size)

    assert fragment in caught.value.message


@given(header=st.text(max_size=40), size=st.integers(0, 2**40))
def test_parse_range_raises_only_range_invalid(header: str, size: int) -> None:
    try:
        resolved = parse_range(header, size)
    except RangeInvalidError as error:
        assert error.message
    else:
        if resolved is not None:
            start, end = resolved
            assert 0 <= start <= end < size


@given(size=st.integers(1, 2**40), data=st.data())
def test_parse_range_stays_within_the_blob(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start, 2**50))

    assert parse_range(f"bytes={start}-{end}", size) == (start, min(end, size - 1))


@pytest.mark.parametrize(
    ("start", "end", "size", "expected"),
    [(0, 9, 10, "bytes 0-9/10"), (5, 5, 6, "bytes 5-5/6")],
)
def test_content_range_header(start: int, end: int, size: int, expected: str) -> None:
    assert content_range_header(start, end, size) == expected


def test_unsatisfiable_range_header() -> None:
    assert unsatisfiable_range_header(42) == "bytes */42"


@pytest.mark.parametrize(("size", "expected"), [(0, "0-0"), (1, "0-0"), (2, "0-1"), (100, "0-99")])
def test_upload_range_header(size: int, expected: str) -> None:
    assert upload_range_header(size) == expected


@given(size=st.integers(1, 2**50))
def test_upload_range_header_parses_back(size: int) -> None:
    assert parse_content_range(upload_range_header(size)) == (0, size - 1)
