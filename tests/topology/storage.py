"""The blob storage every replica of the topology tests shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def shared_blob_storage(root: Path) -> Iterator[dict[str, str]]:
    """MOORAGE_* variables that point every replica at one blob storage."""
    yield {"MOORAGE_STORAGE__DRIVER": "filesystem", "MOORAGE_STORAGE__PATH": str(root)}
