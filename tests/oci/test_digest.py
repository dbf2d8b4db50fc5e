"""Tests of moorage.oci.digest."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.errors import DigestInvalidError
from moorage.oci.digest import (
    SUPPORTED_ALGORITHMS,
    Digest,
    digest_bytes,
    digest_of_hasher,
    new_hasher,
)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY_SHA512 = (
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)


def test_parse_splits_algorithm_and_encoded() -> None:
    digest = Digest.parse(f"sha256:{EMPTY_SHA256}")

    assert digest == Digest("sha256", EMPTY_SHA256)
    assert digest.algorithm == "sha256"
    assert digest.encoded == EMPTY_SHA256


def test_parse_accepts_sha512() -> None:
    assert Digest.parse(f"sha512:{EMPTY_SHA512}").encoded == EMPTY_SHA512


def test_str_joins_with_a_colon() -> None:
    assert str(Digest("sha256", EMPTY_SHA256)) == f"sha256:{EMPTY_SHA256}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (EMPTY_SHA256, "has no ':'"),
        ("", "has no ':'"),
        (f"SHA256:{EMPTY_SHA256}", "algorithm 'SHA256' is malformed"),
        (f":{EMPTY_SHA256}", "algorithm '' is malformed"),
        (f"sha256+:{EMPTY_SHA256}", "algorithm 'sha256+' is malformed"),
        (f"-sha256:{EMPTY_SHA256}", "algorithm '-sha256' is malformed"),
        (f"sha 256:{EMPTY_SHA256}", "algorithm 'sha 256' is malformed"),
        ("sha256:", "encoded part '' is malformed"),
        (f"sha256:{EMPTY_SHA256[:-1]}!", "encoded part"),
        (f"sha256:{EMPTY_SHA256}:extra", "encoded part"),
        (f"md5:{EMPTY_SHA256}", "algorithm 'md5' is not supported"),
        (f"sha256+b64u:{EMPTY_SHA256}", "algorithm 'sha256+b64u' is not supported"),
        (f"sha256:{EMPTY_SHA256.upper()}", "must be lower-case hexadecimal"),
        (f"sha256:{'g' * 64}", "must be lower-case hexadecimal"),
        (f"sha256:{EMPTY_SHA256[:-1]}", "must be 64 hex characters; got 63"),
        (f"sha256:{EMPTY_SHA256}0", "must be 64 hex characters; got 65"),
        (f"sha512:{EMPTY_SHA256}", "must be 128 hex characters; got 64"),
    ],
)
def test_parse_rejects_and_names_the_faulty_part(text: str, fragment: str) -> None:
    with pytest.raises(DigestInvalidError) as caught:
        Digest.parse(text)

    assert fragment in caught.value.message


def test_unsupported_algorithm_message_lists_the_supported_ones() -> None:
    with pytest.raises(DigestInvalidError, match="sha256, sha512"):
        Digest.parse(f"md5:{EMPTY_SHA256}")


def test_error_message_cuts_long_input_short() -> None:
    with pytest.raises(DigestInvalidError) as caught:
        Digest.parse("x" * 10_000)

    assert len(caught.value.message) < 300


def test_constructor_validates_too() -> None:
    with pytest.raises(DigestInvalidError, match="lower-case hexadecimal"):
        Digest("sha256", "not-hex")


def test_digest_is_frozen_and_hashable() -> None:
    digest = Digest("sha256", EMPTY_SHA256)

    with pytest.raises(dataclasses.FrozenInstanceError):
        digest.encoded = EMPTY_SHA256[::-1]  # type: ignore[misc]
    assert len({digest, Digest.parse(str(digest))}) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"sha256:{EMPTY_SHA256}", True),
        (f"sha512:{EMPTY_SHA512}", True),
        ("sha256:abc", False),
        ("latest", False),
        ("", False),
    ],
)
def test_is_valid(text: str, expected: bool) -> None:
    assert Digest.is_valid(text) is expected


def test_supported_algorithms_map_to_hex_lengths() -> None:
    assert dict(SUPPORTED_ALGORITHMS) == {"sha256": 64, "sha512": 128}


def test_digest_bytes_matches_known_values() -> None:
    assert digest_bytes(b"") == Digest("sha256", EMPTY_SHA256)
    assert digest_bytes(b"", "sha512") == Digest("sha512", EMPTY_SHA512)


def test_digest_bytes_rejects_unsupported_algorithm() -> None:
    with pytest.raises(DigestInvalidError, match="'md5' is not supported"):
        digest_bytes(b"content", "md5")


def test_new_hasher_rejects_unsupported_algorithm() -> None:
    with pytest.raises(DigestInvalidError, match="'sha1' is not supported"):
        new_hasher("sha1")


def test_hasher_fed_in_chunks_matches_digest_bytes() -> None:
    hasher = new_hasher("sha512")
    for chunk in (b"hello ", b"", b"world"):
        hasher.update(chunk)

    assert digest_of_hasher("sha512", hasher) == digest_bytes(b"hello world", "sha512")


def test_hasher_copy_is_independent() -> None:
    hasher = new_hasher("sha256")
    hasher.update(b"abc")
    snapshot = hasher.copy()
    hasher.update(b"def")

    assert digest_of_hasher("sha256", snapshot) == digest_bytes(b"abc")
    assert digest_of_hasher("sha256", hasher) == digest_bytes(b"abcdef")


def test_digest_of_hasher_refuses_a_mismatched_algorithm() -> None:
    hasher = new_hasher("sha512")

    with pytest.raises(DigestInvalidError, match="must be 64 hex characters"):
        digest_of_hasher("sha256", hasher)


@given(content=st.binary(), algorithm=st.sampled_from(sorted(SUPPORTED_ALGORITHMS)))
def test_str_and_parse_round_trip(content: bytes, algorithm: str) -> None:
    digest = digest_bytes(content, algorithm)

    assert Digest.parse(str(digest)) == digest
    assert digest.encoded == hashlib.new(algorithm, content).hexdigest()


@given(text=st.text())
def test_parse_raises_only_digest_invalid_and_agrees_with_is_valid(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except DigestInvalidError:
        assert not Digest.is_valid(text)
    else:
        assert str(digest) == text
        assert Digest.is_valid(text)
