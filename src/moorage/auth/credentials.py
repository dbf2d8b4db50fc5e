"""Reading the Authorization header."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from moorage.errors import UnauthorizedError


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """A name and a secret from HTTP Basic."""

    name: str
    secret: str


@dataclass(frozen=True, slots=True)
class BearerCredentials:
    """A token from `Authorization: Bearer`."""

    token: str


def parse_authorization(header: str | None) -> BasicCredentials | BearerCredentials | None:
    """The credentials in an Authorization header; None if there is none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return BearerCredentials(value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UnauthorizedError(
                "the Basic credentials are not valid base64 of NAME:SECRET"
            ) from None
        name, colon, secret = decoded.partition(":")
        if colon and name and secret:
            return BasicCredentials(name, secret)
    raise UnauthorizedError("the Authorization header is not Basic NAME:SECRET or Bearer TOKEN")
