"""Accounts: creation, sign-in, activation and resets, on a real metadata database."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.account_support import ADMIN, API, unique_name

from moorage.accounts.users import User
from moorage.errors import ConflictError, FieldInvalidError, ResourceUnknownError, UnauthorizedError
from moorage.services import Services

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.anyio

ACCOUNT_PASSWORD = "the-account-password"
REGISTRY_PASSWORD = "the-registry-password"


async def test_a_new_account_is_not_activated(services: Services) -> None:
    name = unique_name("user")

    user = await services.accounts.create(name, ACCOUNT_PASSWORD)

    assert (user.name, user.is_admin, user.is_activated) == (name, False, False)
    assert await services.accounts.get(name) == user
    assert user in await services.accounts.list()


async def test_before_activation_only_the_account_password_learns_how_to_activate(
    services: Services,
) -> None:
    name = unique_name("user")
    await services.accounts.create(name, ACCOUNT_PASSWORD)

    with pytest.raises(UnauthorizedError) as right:
        await services.accounts.registry_login(name, ACCOUNT_PASSWORD)
    with pytest.raises(UnauthorizedError) as wrong:
        await services.accounts.registry_login(name, "a-wrong-password")
    with pytest.raises(UnauthorizedError) as unknown:
        await services.accounts.registry_login(unique_name("nobody"), ACCOUNT_PASSWORD)

    assert right.value.message == (
        f"the registry is not activated for account {name}: set a registry password in the"
        f" console, or run `moorage user activate {name}`"
    )
    assert wrong.value.message == unknown.value.message == "invalid username or password"


async def test_activation_sets_a_registry_password_apart_from_the_account_password(
    services: Services,
) -> None:
    name = unique_name("user")
    await services.accounts.create(name, ACCOUNT_PASSWORD)

    activated = await services.accounts.set_registry_password(name, REGISTRY_PASSWORD)

    assert activated.is_activated
    assert (await services.accounts.registry_login(name, REGISTRY_PASSWORD)).name == name
    assert (await services.accounts.sign_in(name, ACCOUNT_PASSWORD)).name == name
    with pytest.raises(UnauthorizedError):
        await services.accounts.registry_login(name, ACCOUNT_PASSWORD)
    with pytest.raises(UnauthorizedError):
        await services.accounts.sign_in(name, REGISTRY_PASSWORD)


async def test_a_registry_password_reset_stops_the_old_one_at_once(services: Services) -> None:
    name = unique_name("user")
    await services.accounts.create(name, ACCOUNT_PASSWORD)
    first = await services.accounts.set_registry_password(name, REGISTRY_PASSWORD)
    # Verified once, so that the old password sits in the cache of recent logins.
    await services.accounts.registry_login(name, REGISTRY_PASSWORD)

    second = await services.accounts.set_registry_password(name, "the-next-password")

    assert second.registry_password_generation == first.registry_password_generation + 1
    with pytest.raises(UnauthorizedError):
        await services.accounts.registry_login(name, REGISTRY_PASSWORD)
    assert (await services.accounts.registry_login(name, "the-next-password")).name == name


async def test_an_account_password_reset(services: Services) -> None:
    name = unique_name("user")
    await services.accounts.create(name, ACCOUNT_PASSWORD)

    await services.accounts.set_account_password(name, "another-account-password")

    with pytest.raises(UnauthorizedError, match="invalid account name or password"):
        await services.accounts.sign_in(name, ACCOUNT_PASSWORD)
    assert (await services.accounts.sign_in(name, "another-account-password")).name == name


async def test_names_are_unique(services: Services) -> None:
    name = unique_name("user")
    await services.accounts.create(name, ACCOUNT_PASSWORD)

    with pytest.raises(ConflictError, match="exists already"):
        await services.accounts.create(name, "some-other-password")


@pytest.mark.parametrize(
    ("name", "password", "field"),
    [("Bad Name", ACCOUNT_PASSWORD, "name"), ("fine", "short", "password")],
)
async def test_bad_names_and_passwords_name_the_field(
    services: Services, name: str, password: str, field: str
) -> None:
    with pytest.raises(FieldInvalidError) as refused:
        await services.accounts.create(name, password)

    assert refused.value.field == field


async def test_unknown_accounts(services: Services) -> None:
    name = unique_name("nobody")

    for attempt in [
        services.accounts.get(name),
        services.accounts.set_registry_password(name, REGISTRY_PASSWORD),
        services.accounts.set_account_password(name, ACCOUNT_PASSWORD),
    ]:
        with pytest.raises(ResourceUnknownError, match=f"no account named '{name}'"):
            await attempt
    with pytest.raises(UnauthorizedError):
        await services.accounts.sign_in(name, ACCOUNT_PASSWORD)


async def test_the_first_admin_is_made_only_on_an_empty_database(services: Services) -> None:
    # The module's database has accounts already.
    await services.accounts.create(unique_name("user"), ACCOUNT_PASSWORD)

    assert not await services.accounts.ensure_first_admin("late-admin", ACCOUNT_PASSWORD)
    with pytest.raises(ResourceUnknownError):
        await services.accounts.get("late-admin")


def test_the_first_admin_comes_from_the_settings_on_an_empty_database(
    tuned_server: RunningServer,
) -> None:
    from tests.conftest import RunningServer

    me = httpx.get(f"{tuned_server.url}{API}/me", auth=ADMIN)
    # Another start, with another admin in the settings, finds accounts and makes none.
    later = RunningServer(
        tuned_server.data_dir,
        env={**tuned_server.env, "MOORAGE_ADMIN_USER": "second-admin"},
        database_env=tuned_server.database_env,
    )
    listed = later.cli("user", "list")

    assert me.json() == {"name": ADMIN[0], "is_admin": True, "is_activated": False}
    assert listed.returncode == 0, listed.stderr
    assert f"{ADMIN[0]}\tadmin, not activated" in listed.stdout.splitlines()
    assert "second-admin" not in listed.stdout


async def test_simultaneous_creations_of_one_name_make_one_account(services: Services) -> None:
    name = unique_name("race")

    results = await asyncio.gather(
        *(services.accounts.create(name, ACCOUNT_PASSWORD) for _ in range(4)),
        return_exceptions=True,
    )

    assert [type(result).__name__ for result in results].count("User") == 1
    assert all(
        isinstance(result, ConflictError) for result in results if not isinstance(result, User)
    )
