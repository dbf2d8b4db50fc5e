"""Encryption at rest of build credentials and webhook secrets, with a key in the data dir."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from moorage.keyfiles import read_or_create_secret_file


def load_or_create_fernet_key(path: Path) -> bytes:
    """The Fernet key at `path`, created (mode 0600) if there is none yet."""
    return read_or_create_secret_file(path, Fernet.generate_key).strip()


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
