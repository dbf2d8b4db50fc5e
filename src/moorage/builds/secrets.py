"""Encryption at rest of build credentials and webhook secrets, with a key in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def load_or_create_fernet_key(path: Path) -> bytes:
    """The Fernet key at `path`, created (mode 0600) if there is none yet."""
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if another process made the key first; then theirs is used.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes().strip()


class SecretBox:
    """Encrypts and decrypts the secrets that build rules keep."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> bytes:
        """`plaintext` encrypted and authenticated."""
        return self._fernet.encrypt(plaintext.encode())

    def open(self, sealed: bytes) -> str:
        """The plaintext of what `seal` made; ValueError if the key or the data changed."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise ValueError(
                "a stored build secret cannot be decrypted: the build secrets key changed"
            ) from None
