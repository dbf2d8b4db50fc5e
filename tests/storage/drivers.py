"""Settings for each storage driver under test; an S3 one stores under a prefix of its own."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from tests.s3server import S3Server

from moorage.settings import Settings, StorageSettings

# Every driver name; "s3" runs against the session's moto server (tests/s3server.py).
DRIVERS = ["filesystem", "memory", "s3"]

_prefixes = itertools.count()


def driver_settings(driver: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings that select `driver`, isolated from every other test's."""
    s3 = None
    if driver == "s3":
        s3_server: S3Server = request.getfixturevalue("s3_server")
        s3 = s3_server.settings(prefix=f"test-{next(_prefixes)}")
    return Settings(data_dir=tmp_path, storage=StorageSettings(driver=driver, s3=s3))
