"""Encryption at rest of build credentials and webhook secrets, with the deployment's key."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts and decrypts the secrets that build rules keep."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        # A function, since the key is read from the database when the services start.
        self._key = key

    def seal(self, plaintext: str) -> bytes:
        """`plaintext` encrypted and authenticated."""
        return Fernet(self._key()).encrypt(plaintext.encode())

    def open(self, sealed: bytes) -> str:
        """The plaintext of what `seal` made; ValueError if the key or the data changed."""
        try:
            return Fernet(self._key()).decrypt(sealed).decode()
        except InvalidToken:
            raise ValueError(
                "a stored build secret cannot be decrypted: the build secrets key changed"
            ) from None
