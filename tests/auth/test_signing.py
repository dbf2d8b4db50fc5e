"""Signing and verifying registry tokens: pure, no server; forged tokens are made with PyJWT."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from moorage.auth.access import Scope
from moorage.auth.signing import (
    LEEWAY_SECONDS,
    TokenInvalidError,
    TokenSigner,
    key_id,
)

PULL_WEB = Scope("repository", "alice/web", frozenset({"pull"}))


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signer(key: ec.EllipticCurvePrivateKey) -> TokenSigner:
    return TokenSigner(lambda: key, issuer="moorage", service="moorage", lifetime=300)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def forge(key: Any, claims: dict[str, Any], algorithm: str = "ES256") -> str:
    """A token with these exact claims, signed with `key`."""
    return jwt.encode(claims, key, algorithm=algorithm)


def test_access_token_round_trip(signer: TokenSigner) -> None:
    catalog = Scope("registry", "catalog", frozenset({"*"}))
    issued = signer.issue_access("alice", 7, "team", [PULL_WEB, catalog])

    claims = signer.verify_access(issued.token)

    assert (claims.subject, claims.user_id, claims.namespace_limit) == ("alice", 7, "team")
    assert claims.allows(PULL_WEB)
    assert not claims.allows(Scope("repository", "alice/web", frozenset({"pull", "push"})))
    assert not claims.allows(Scope("repository", "alice/api", frozenset({"pull"})))
    assert claims.allows(Scope("registry", "catalog", frozenset({"*"})))
    assert issued.expires_in == 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", issued.issued_at)


def test_access_token_carries_the_claims_the_spec_names(
    signer: TokenSigner, key: ec.EllipticCurvePrivateKey
) -> None:
    issued = signer.issue_access("alice", 7, None, [PULL_WEB])

    header = jwt.get_unverified_header(issued.token)
    claims = claims_of(issued.token)

    assert header == {"alg": "ES256", "typ": "JWT", "kid": key_id(key)}
    assert claims["iss"] == claims["aud"] == "moorage"
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["access"] == [{"type": "repository", "name": "alice/web", "actions": ["pull"]}]
    assert "ns" not in claims
    assert len(str(claims["jti"])) == 32
    assert claims_of(signer.issue_access("alice", 7, None, []).token)["jti"] != claims["jti"]


def test_refresh_token_round_trip(signer: TokenSigner) -> None:
    claims = signer.verify_refresh(signer.issue_refresh("alice", 3, "abc123"))

    assert (claims.subject, claims.generation, claims.token_id) == ("alice", 3, "abc123")
    assert signer.verify_refresh(signer.issue_refresh("alice", 3, None)).token_id is None


def test_a_refresh_token_is_no_access_token_and_the_other_way_round(signer: TokenSigner) -> None:
    refresh = signer.issue_refresh("alice", 1, None)
    access = signer.issue_access("alice", 7, None, [PULL_WEB]).token

    with pytest.raises(TokenInvalidError, match="not a access token"):
        signer.verify_access(refresh)
    with pytest.raises(TokenInvalidError, match="not a refresh token"):
        signer.verify_refresh(access)


def test_expiry_is_enforced_after_the_leeway(
    signer: TokenSigner, key: ec.EllipticCurvePrivateKey
) -> None:
    claims = claims_of(signer.issue_access("alice", 7, None, [PULL_WEB]).token)
    now = int(time.time())

    just_expired = forge(key, {**claims, "iat": now - 400, "exp": now - LEEWAY_SECONDS // 2})
    long_expired = forge(key, {**claims, "iat": now - 400, "exp": now - LEEWAY_SECONDS - 10})
    not_yet = forge(key, {**claims, "nbf": now + LEEWAY_SECONDS + 30})

    assert signer.verify_access(just_expired).subject == "alice"
    with pytest.raises(TokenInvalidError, match="expired"):
        signer.verify_access(long_expired)
    with pytest.raises(TokenInvalidError, match="not yet valid"):
        signer.verify_access(not_yet)


def test_tokens_signed_by_another_key_are_refused(
    signer: TokenSigner, key: ec.EllipticCurvePrivateKey
) -> None:
    claims = claims_of(signer.issue_access("alice", 7, None, [PULL_WEB]).token)
    other = ec.generate_private_key(ec.SECP256R1())
    # Even with this deployment's key id in the header.
    forged = jwt.encode(claims, other, algorithm="ES256", headers={"kid": key_id(key)})

    with pytest.raises(TokenInvalidError, match="Signature verification failed"):
        signer.verify_access(forged)


def test_an_altered_payload_breaks_the_signature(signer: TokenSigner) -> None:
    header, payload, signature = signer.issue_access("alice", 7, None, [PULL_WEB]).token.split(".")
    claims = claims_of(f"{header}.{payload}.{signature}")
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(TokenInvalidError):
        signer.verify_access(f"{header}.{altered}.{signature}")


def test_other_algorithms_are_refused(signer: TokenSigner) -> None:
    claims = claims_of(signer.issue_access("alice", 7, None, [PULL_WEB]).token)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    for forged in [
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(claims, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256"),
        jwt.encode(claims, rsa_key, algorithm="RS256"),
    ]:
        with pytest.raises(TokenInvalidError):
            signer.verify_access(forged)


@pytest.mark.parametrize(("claim", "value"), [("aud", "another-registry"), ("iss", "someone-else")])
def test_tokens_for_another_audience_or_issuer_are_refused(
    signer: TokenSigner, key: ec.EllipticCurvePrivateKey, claim: str, value: str
) -> None:
    claims = claims_of(signer.issue_access("alice", 7, None, [PULL_WEB]).token)

    with pytest.raises(TokenInvalidError):
        signer.verify_access(forge(key, {**claims, claim: value}))


@pytest.mark.parametrize(
    "changes",
    [
        {"uid": None},
        {"uid": "seven"},
        {"uid": True},
        {"sub": 5},
        {"access": "repository:alice/web:pull"},
        {"access": [1]},
        {"access": [{"type": "repository", "name": "alice/web"}]},
        {"access": [{"type": "repository", "name": "alice/web", "actions": "pull"}]},
        {"access": [{"type": ["repository"], "name": "alice/web", "actions": ["pull"]}]},
        {"access": None},
        {"ns": ["team"]},
        {"ns": 5},
    ],
    ids=repr,
)
def test_access_tokens_with_malformed_claims_are_invalid(
    signer: TokenSigner, key: ec.EllipticCurvePrivateKey, changes: dict[str, Any]
) -> None:
    """Only this deployment can sign, but a mistake must not become a 500 or a wrong grant."""
    claims = claims_of(signer.issue_access("alice", 7, None, [PULL_WEB]).token)

    with pytest.raises(TokenInvalidError):
        signer.verify_access(forge(key, {**claims, **changes}))


@pytest.mark.parametrize(
    "changes",
    [{"gen": None}, {"gen": "1"}, {"gen": True}, {"gen": 1.5}, {"tid": 5}, {"tid": ["x"]}],
    ids=repr,
)
def test_refresh_tokens_with_malformed_claims_are_invalid(
    signer: TokenSigner, key: ec.EllipticCurvePrivateKey, changes: dict[str, Any]
) -> None:
    claims = claims_of(signer.issue_refresh("alice", 1, "abc"))

    with pytest.raises(TokenInvalidError):
        signer.verify_refresh(forge(key, {**claims, **changes}))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "e30.e30.", "...."])
def test_garbage_is_an_invalid_token(signer: TokenSigner, token: str) -> None:
    with pytest.raises(TokenInvalidError):
        signer.verify_access(token)
    with pytest.raises(TokenInvalidError):
        signer.verify_refresh(token)


def test_key_id_is_the_libtrust_fingerprint(key: ec.EllipticCurvePrivateKey) -> None:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()

    kid = key_id(key)

    assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", kid)
    assert kid.replace(":", "") == expected
