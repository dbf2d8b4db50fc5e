"""The account services over a real metadata database of the module's own, no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.databases import database_environment

from moorage.services import Services, build_services
from moorage.settings import load_settings


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    """Every service of a deployment in a temporary data dir; tests use names of their own."""
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("accounts") / "data",
        database_url=database_environment().get("MOORAGE_DATABASE_URL"),
    )
    deployment = build_services(settings)
    await deployment.start()
    yield deployment
    await deployment.close()
