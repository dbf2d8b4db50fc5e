"""The key that signs registry tokens, and the access and refresh tokens it signs (ES256 JWTs)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from moorage.auth.access import Scope

ALGORITHM = "ES256"
ACCESS_KIND = "access"
REFRESH_KIND = "refresh"
REFRESH_LIFETIME_SECONDS = 30 * 24 * 3600
# Tolerated clock difference between replicas, in seconds.
LEEWAY_SECONDS = 60


# The signing key; a function, since the key is read from the database when the services start.
KeySource = Callable[[], ec.EllipticCurvePrivateKey]


class TokenInvalidError(Exception):
    """A token is malformed, forged, expired, or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token grants."""

    subject: str
    user_id: int
    namespace_limit: str | None
    access: dict[tuple[str, str], frozenset[str]]

    def allows(self, scope: Scope) -> bool:
        """Whether the token grants every action of `scope`."""
        granted = self.access.get((scope.resource_type, scope.name), frozenset())
        return "*" in granted or scope.actions <= granted


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    """Who a verified refresh token stands for."""

    subject: str
    generation: int
    token_id: str | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and its timing."""

    token: str
    expires_in: int
    issued_at: str


def key_id(key: ec.EllipticCurvePrivateKey) -> str:
    """The libtrust-style key id: 12 groups of 4 base32 characters of the public key's hash."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(public).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[index : index + 4] for index in range(0, 48, 4))


@dataclass(frozen=True, slots=True)
class _LoadedKey:
    private: ec.EllipticCurvePrivateKey
    public: ec.EllipticCurvePublicKey
    key_id: str


class TokenSigner:
    """Issues and verifies this deployment's access and refresh tokens."""

    def __init__(self, key: KeySource, issuer: str, service: str, lifetime: int) -> None:
        self._key_source = key
        self._loaded: _LoadedKey | None = None
        self.issuer = issuer
        self.service = service
        self.lifetime = lifetime

    def issue_access(
        self, subject: str, user_id: int, namespace_limit: str | None, access: list[Scope]
    ) -> IssuedToken:
        """An access token granting `access` to `subject`."""
        now = int(time.time())
        claims: dict[str, object] = {
            **self._base_claims(subject, now, self.lifetime, ACCESS_KIND),
            "uid": user_id,
            "access": [
                {"type": scope.resource_type, "name": scope.name, "actions": sorted(scope.actions)}
                for scope in access
            ],
        }
        if namespace_limit is not None:
            claims["ns"] = namespace_limit
        issued_at = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        return IssuedToken(self._sign(claims), self.lifetime, issued_at)

    def issue_refresh(self, subject: str, generation: int, token_id: str | None) -> str:
        """A refresh token (docker's identity token), valid until the registry password changes."""
        now = int(time.time())
        claims: dict[str, object] = {
            **self._base_claims(subject, now, REFRESH_LIFETIME_SECONDS, REFRESH_KIND),
            "gen": generation,
        }
        if token_id is not None:
            claims["tid"] = token_id
        return self._sign(claims)

    def verify_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token, or `TokenInvalidError`."""
        claims = self._verify(token, ACCESS_KIND)
        return AccessClaims(
            str(claims["sub"]),
            _integer(claims, "uid"),
            _optional_text(claims, "ns"),
            _access(claims.get("access", [])),
        )

    def verify_refresh(self, token: str) -> RefreshClaims:
        """The claims of a valid refresh token, or `TokenInvalidError`."""
        claims = self._verify(token, REFRESH_KIND)
        return RefreshClaims(
            str(claims["sub"]), _integer(claims, "gen"), _optional_text(claims, "tid")
        )

    def _base_claims(self, subject: str, now: int, lifetime: int, kind: str) -> dict[str, object]:
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 1,
            "exp": now + lifetime,
            "jti": secrets.token_hex(16),
            "kind": kind,
        }

    def _key(self) -> _LoadedKey:
        # The public key and key id are derived once per key rather than on every token; the
        # source is asked each time because the key is loaded (or reloaded) after construction.
        private = self._key_source()
        if self._loaded is None or self._loaded.private is not private:
            self._loaded = _LoadedKey(private, private.public_key(), key_id(private))
        return self._loaded

    def _sign(self, claims: dict[str, object]) -> str:
        key = self._key()
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.key_id})

    def _verify(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key().public,
                algorithms=[ALGORITHM],
                audience=self.service,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalidError(str(exc)) from None
        if claims.get("kind") != kind:
            raise TokenInvalidError(f"not a {kind} token")
        return claims


# Only this deployment signs tokens, but a claim of the wrong type must still be an invalid
# token rather than a 500 or, worse, a namespace limit that compares unequal to every name.


def _integer(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenInvalidError(f"claim {name!r} is not an integer")
    return value


def _optional_text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is not None and not isinstance(value, str):
        raise TokenInvalidError(f"claim {name!r} is not a string")
    return value


def _access(items: object) -> dict[tuple[str, str], frozenset[str]]:
    if not isinstance(items, list):
        raise TokenInvalidError("claim 'access' is not a list")
    access: dict[tuple[str, str], frozenset[str]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise TokenInvalidError("claim 'access' holds an entry that is not an object")
        kind, name, actions = item.get("type"), item.get("name"), item.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise TokenInvalidError("an entry of claim 'access' lacks type, name or actions")
        if not all(isinstance(action, str) for action in actions):
            raise TokenInvalidError("an entry of claim 'access' has an action that is no string")
        access[(kind, name)] = frozenset(actions)
    return access
