"""Secret key files in the data dir: made once, readable by their owner only."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create_secret_file(path: Path, make_content: Callable[[], bytes]) -> bytes:
    """The bytes at `path`; if there is no file yet, `make_content()` written there (0600).

    Several processes may start at once: each writes a private temporary file and links it
    into place; link() fails for all but the first, and they all read the first one's key.
    """
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(make_content())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()
