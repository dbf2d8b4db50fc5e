"""The deployment's secret keys, kept in the metadata database so that every replica shares them.

Three keys: the one that signs registry tokens, the one that signs console session cookies and
the one that encrypts build secrets. Each is made once per database by whichever process starts
first; the others find it there. A deployment from before keys moved into the database had them
as files in its data dir: those are taken over as they are, so that issued tokens, open
sessions and stored build secrets stay valid.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from moorage.clock import utc_now
from moorage.metadata.database import Database
from moorage.metadata.tables import secret_keys

TOKEN_SIGNING = "token-signing"
CONSOLE_SESSION = "console-session"
BUILD_SECRETS = "build-secrets"

# The key files of the data dir that a deployment used before, by key name.
LEGACY_FILES = {
    TOKEN_SIGNING: "token-signing-key.pem",
    CONSOLE_SESSION: "console-session.key",
    BUILD_SECRETS: "build-secrets.key",
}
SESSION_KEY_BYTES = 32


class KeysNotLoadedError(RuntimeError):
    """A key was used before `SecretKeys.load()` ran (the services were not started)."""


def new_signing_key_pem() -> bytes:
    """A new P-256 private key, PEM-encoded (PKCS#8)."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signing_key_from_pem(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The EC private key in `pem`; ValueError if it holds another kind of key."""
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError("the token signing key is not an EC private key")
    return loaded


_MAKERS: dict[str, Callable[[], bytes]] = {
    TOKEN_SIGNING: new_signing_key_pem,
    CONSOLE_SESSION: lambda: secrets.token_bytes(SESSION_KEY_BYTES),
    BUILD_SECRETS: Fernet.generate_key,
}


class SecretKeys:
    """The three keys, read from the database (made there if missing) when the services start."""

    def __init__(self, database: Database, legacy_dir: Path | None) -> None:
        self._database = database
        self._legacy_dir = legacy_dir
        self._values: dict[str, bytes] = {}
        self._signing_key: ec.EllipticCurvePrivateKey | None = None

    async def load(self) -> None:
        """Read every key, making the missing ones; every process that races makes one winner."""
        for name, make in _MAKERS.items():
            self._values[name] = await self._read_or_create(name, make)
        self._signing_key = signing_key_from_pem(self._values[TOKEN_SIGNING])

    def token_signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The key that signs registry access and refresh tokens."""
        if self._signing_key is None:
            raise KeysNotLoadedError("secret keys are used before the services started")
        return self._signing_key

    def console_session_key(self) -> bytes:
        """The key that signs console session cookies."""
        return self._value(CONSOLE_SESSION)

    def build_secrets_key(self) -> bytes:
        """The Fernet key that encrypts build credentials and webhook secrets."""
        return self._value(BUILD_SECRETS)

    def _value(self, name: str) -> bytes:
        value = self._values.get(name)
        if value is None:
            raise KeysNotLoadedError("secret keys are used before the services started")
        return value

    async def _read_or_create(self, name: str, make: Callable[[], bytes]) -> bytes:
        stored = await self._stored(name)
        if stored is not None:
            return stored
        value = self._legacy_value(name) or make()
        async with self._database.writing() as connection:
            await connection.execute(
                self._database.insert_ignoring_duplicates(secret_keys).values(
                    name=name, value=value, created_at=utc_now()
                )
            )
        # Another process may have inserted first: the stored key is the one everybody uses.
        stored = await self._stored(name)
        if stored is None:
            raise RuntimeError(f"secret key {name} was not stored")
        return stored

    async def _stored(self, name: str) -> bytes | None:
        async with self._database.reading() as connection:
            query = select(secret_keys.c.value).where(secret_keys.c.name == name)
            value = (await connection.execute(query)).scalar_one_or_none()
        return bytes(value) if value is not None else None

    def _legacy_value(self, name: str) -> bytes | None:
        if self._legacy_dir is None:
            return None
        path = self._legacy_dir / LEGACY_FILES[name]
        if not path.is_file():
            return None
        value = path.read_bytes()
        return value.strip() if name == BUILD_SECRETS else value
