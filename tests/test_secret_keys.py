"""The deployment's secret keys live in the metadata database, one set shared by every process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.databases import database_url as database_url_in

from moorage.auth.signing import key_id
from moorage.metadata.database import Database
from moorage.secret_keys import (
    BUILD_SECRETS,
    CONSOLE_SESSION,
    LEGACY_FILES,
    TOKEN_SIGNING,
    KeysNotLoadedError,
    SecretKeys,
    new_signing_key_pem,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    url = database_url_in(tmp_path)
    database = Database(url)
    await database.migrate()
    await database.close()
    return url


async def loaded(url: str, legacy_dir: Path | None = None) -> SecretKeys:
    database = Database(url)
    try:
        keys = SecretKeys(database, legacy_dir)
        await keys.load()
        return keys
    finally:
        await database.close()


def fingerprint(keys: SecretKeys) -> tuple[str, bytes, bytes]:
    return (key_id(keys.token_signing_key()), keys.console_session_key(), keys.build_secrets_key())


async def test_keys_are_made_once_and_every_later_process_reads_the_same(
    database_url: str,
) -> None:
    first = await loaded(database_url)
    second = await loaded(database_url)

    assert fingerprint(first) == fingerprint(second)
    assert len(first.console_session_key()) == 32
    Fernet(first.build_secrets_key())  # a valid Fernet key, or this raises


async def test_processes_starting_together_agree_on_one_set(database_url: str) -> None:
    racing = await asyncio.gather(*(loaded(database_url) for _ in range(6)))

    assert len({fingerprint(keys) for keys in racing}) == 1


async def test_two_databases_have_different_keys(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "other").mkdir()
    other_url = database_url_in(tmp_path / "other")
    other = Database(other_url)
    await other.migrate()
    await other.close()

    assert fingerprint(await loaded(database_url)) != fingerprint(await loaded(other_url))


async def test_key_files_of_an_older_data_dir_are_taken_over(
    tmp_path: Path, database_url: str
) -> None:
    pem, session_key, fernet_key = new_signing_key_pem(), b"s" * 32, Fernet.generate_key()
    (tmp_path / LEGACY_FILES[TOKEN_SIGNING]).write_bytes(pem)
    (tmp_path / LEGACY_FILES[CONSOLE_SESSION]).write_bytes(session_key)
    (tmp_path / LEGACY_FILES[BUILD_SECRETS]).write_bytes(fernet_key + b"\n")

    keys = await loaded(database_url, legacy_dir=tmp_path)

    legacy_key = serialization.load_pem_private_key(pem, password=None)
    assert keys.token_signing_key().private_numbers() == legacy_key.private_numbers()  # type: ignore[union-attr]
    assert keys.console_session_key() == session_key
    assert keys.build_secrets_key() == fernet_key
    # Taken over once: later processes read the database, whatever the files say now.
    (tmp_path / LEGACY_FILES[CONSOLE_SESSION]).write_bytes(b"t" * 32)
    assert (await loaded(database_url, legacy_dir=tmp_path)).console_session_key() == session_key


async def test_a_signing_key_of_another_kind_is_refused(tmp_path: Path, database_url: str) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / LEGACY_FILES[TOKEN_SIGNING]).write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(ValueError, match="not an EC private key"):
        await loaded(database_url, legacy_dir=tmp_path)


async def test_keys_cannot_be_used_before_they_are_loaded(database_url: str) -> None:
    database = Database(database_url)
    keys = SecretKeys(database, legacy_dir=None)
    try:
        with pytest.raises(KeysNotLoadedError):
            keys.token_signing_key()
        with pytest.raises(KeysNotLoadedError):
            keys.console_session_key()
    finally:
        await database.close()
