"""Namespaces: globally unique names owned by one account, deleted only when empty."""

from __future__ import annotations

import asyncio

import pytest
from tests.account_support import unique_name

from moorage.accounts.namespaces import Namespace
from moorage.errors import ConflictError, FieldInvalidError, ResourceUnknownError
from moorage.services import Services

pytestmark = pytest.mark.anyio


async def new_user(services: Services) -> str:
    name = unique_name("user")
    await services.accounts.create(name, "an-account-password")
    return name


async def test_create_get_and_list(services: Services) -> None:
    owner = await new_user(services)
    first, second = unique_name("ns"), unique_name("ns")

    created = await services.namespaces.create(second, owner)
    await services.namespaces.create(first, owner)

    assert (created.name, created.owner, created.repository_count) == (second, owner, 0)
    assert await services.namespaces.get(second, owner) == created
    assert [space.name for space in await services.namespaces.list_owned(owner)] == sorted(
        [first, second]
    )
    owner_id = (await services.accounts.get(owner)).id
    assert await services.namespaces.owner_id(second) == owner_id
    assert await services.namespaces.owner_id(unique_name("ns")) is None


async def test_names_are_unique_across_accounts(services: Services) -> None:
    alice, bob = await new_user(services), await new_user(services)
    name = unique_name("ns")
    await services.namespaces.create(name, alice)

    for owner in (alice, bob):
        with pytest.raises(ConflictError, match=f"the namespace '{name}' is taken"):
            await services.namespaces.create(name, owner)


async def test_bad_names_are_refused_with_the_rule(services: Services) -> None:
    owner = await new_user(services)

    with pytest.raises(FieldInvalidError, match="2 to 30 characters") as refused:
        await services.namespaces.create("x", owner)

    assert refused.value.field == "name"


async def test_someone_elses_namespace_is_unknown_like_a_missing_one(services: Services) -> None:
    alice, bob = await new_user(services), await new_user(services)
    name, missing = unique_name("ns"), unique_name("ns")
    await services.namespaces.create(name, alice)

    messages = []
    for space in (name, missing):
        for attempt in [
            services.namespaces.get(space, bob),
            services.namespaces.delete(space, bob),
        ]:
            with pytest.raises(ResourceUnknownError) as refused:
                await attempt
            messages.append(refused.value.message.replace(space, "NAME"))

    assert len(set(messages)) == 1
    assert await services.namespaces.get(name, alice)


async def test_only_an_empty_namespace_is_deleted(services: Services) -> None:
    owner = await new_user(services)
    name = unique_name("ns")
    await services.namespaces.create(name, owner)
    await services.catalog.create(f"{name}/web")
    await services.catalog.create(f"{name}/api")

    with pytest.raises(ConflictError) as refused:
        await services.namespaces.delete(name, owner)

    assert (
        refused.value.message == f"namespace {name} still holds 2 repositories; delete them first"
    )
    empty = unique_name("ns")
    await services.namespaces.create(empty, owner)
    await services.namespaces.delete(empty, owner)
    assert [space.name for space in await services.namespaces.list_owned(owner)] == [name]


async def test_an_unknown_owner(services: Services) -> None:
    nobody = unique_name("nobody")

    with pytest.raises(ResourceUnknownError, match=f"no account named '{nobody}'"):
        await services.namespaces.create(unique_name("ns"), nobody)
    with pytest.raises(ResourceUnknownError, match=f"no account named '{nobody}'"):
        await services.namespaces.list_owned(nobody)


async def test_simultaneous_creations_of_one_name_make_one_namespace(services: Services) -> None:
    owners = [await new_user(services) for _ in range(3)]
    name = unique_name("ns")

    results = await asyncio.gather(
        *(services.namespaces.create(name, owner) for owner in owners), return_exceptions=True
    )

    refused = [result for result in results if not isinstance(result, Namespace)]
    assert len(refused) == 2
    assert all(isinstance(result, ConflictError) for result in refused), refused
