"""Content digests: the `algorithm:encoded` grammar of the OCI spec, and hashing to produce them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, Self

from moorage.errors import DigestInvalidError
from moorage.oci.quoting import shown

SUPPORTED_ALGORITHMS: Final[Mapping[str, int]] = {"sha256": 64, "sha512": 128}
"""The digest algorithms moorage accepts, each with the length of its hex encoding."""

_ALGORITHM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_ENCODED = re.compile(r"[a-zA-Z0-9=_-]+")
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def _check_supported(algorithm: str, encoded: str) -> None:
    """Raise unless `algorithm` is supported and `encoded` is its lower-case hex of full length."""
    length = SUPPORTED_ALGORITHMS.get(algorithm)
    if length is None:
        supported = ", ".join(SUPPORTED_ALGORITHMS)
        raise DigestInvalidError(
            f"digest algorithm {shown(algorithm)} is not supported; use one of: {supported}"
        )
    if _LOWER_HEX.fullmatch(encoded) is None:
        raise DigestInvalidError(
            f"{algorithm} digest {shown(encoded)} must be lower-case hexadecimal (0-9, a-f)"
        )
    if len(encoded) != length:
        raise DigestInvalidError(
            f"{algorithm} digest must be {length} hex characters; got {len(encoded)}"
        )


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated content digest such as `sha256:<64 hex>`."""

    algorithm: str
    encoded: str

    def __post_init__(self) -> None:
        _check_supported(self.algorithm, self.encoded)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `algorithm:encoded`, raising DigestInvalidError that names the faulty part."""
        algorithm, separator, encoded = text.partition(":")
        if not separator:
            raise DigestInvalidError(
                f"digest {shown(text)} has no ':' between algorithm and encoded part"
            )
        if _ALGORITHM.fullmatch(algorithm) is None:
            raise DigestInvalidError(
                f"digest algorithm {shown(algorithm)} is malformed: expected lower-case letters"
                " and digits, optionally joined by '+', '.', '_' or '-'"
            )
        if _ENCODED.fullmatch(encoded) is None:
            raise DigestInvalidError(
                f"digest encoded part {shown(encoded)} is malformed: expected one or more of"
                " a-z, A-Z, 0-9, '=', '_' and '-'"
            )
        return cls(algorithm, encoded)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        """Tell whether `text` would parse as a supported digest."""
        try:
            cls.parse(text)
        except DigestInvalidError:
            return False
        return True


class Hasher(Protocol):
    """The part of a hashlib hash object that digesting needs."""

    def update(self, data: bytes, /) -> None:
        """Feed more content."""

    def hexdigest(self) -> str:
        """Return the hex digest of the content fed so far."""

    def copy(self) -> Hasher:
        """Return an independent hasher with the same state."""


def new_hasher(algorithm: str) -> Hasher:
    """Return a fresh hasher for a supported algorithm, or raise DigestInvalidError."""
    if algorithm not in SUPPORTED_ALGORITHMS:
        supported = ", ".join(SUPPORTED_ALGORITHMS)
        raise DigestInvalidError(
            f"digest algorithm {shown(algorithm)} is not supported; use one of: {supported}"
        )
    return hashlib.new(algorithm)


def digest_of_hasher(algorithm: str, hasher: Hasher) -> Digest:
    """Return the digest of everything fed to `hasher`, which must use `algorithm`."""
    return Digest(algorithm, hasher.hexdigest())


def digest_bytes(content: bytes, algorithm: str = "sha256") -> Digest:
    """Return the digest of `content` under `algorithm`."""
    hasher = new_hasher(algorithm)
    hasher.update(content)
    return digest_of_hasher(algorithm, hasher)
