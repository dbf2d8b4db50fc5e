"""Access tokens: shown once, stored only as a hash, scoped, expiring, revoked at once."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from tests.account_support import unique_name

from moorage.accounts.tokens import AccessToken, looks_like_access_token
from moorage.clock import utc_now
from moorage.errors import ConflictError, FieldInvalidError, ResourceUnknownError
from moorage.metadata.tables import access_tokens
from moorage.services import Services

pytestmark = pytest.mark.anyio


async def new_user(services: Services, namespace: str | None = None) -> str:
    name = unique_name("user")
    await services.accounts.create(name, "an-account-password")
    if namespace is not None:
        await services.namespaces.create(namespace, name)
    return name


async def test_the_secret_is_given_once_and_stored_only_as_a_hash(services: Services) -> None:
    owner = await new_user(services)

    token, secret = await services.tokens.create(owner, "ci", "pull,push")

    assert looks_like_access_token(secret)
    assert token.id in secret
    assert (token.name, token.actions, token.namespace) == ("ci", {"pull", "push"}, None)
    assert (token.expires_at, token.last_used_at) == (None, None)
    assert "secret" not in {field.name for field in fields(AccessToken)}
    assert await services.tokens.list(owner) == [token]
    async with services.database.reading() as connection:
        (stored,) = (await connection.execute(select(access_tokens))).all()[-1:]
    assert secret not in repr(tuple(stored))


async def test_a_token_logs_in_only_for_its_owner(services: Services) -> None:
    owner, other = await new_user(services), await new_user(services)
    token, secret = await services.tokens.create(owner, "ci", "pull")

    login = await services.tokens.login(owner, secret)

    assert login is not None
    assert (login.token_id, login.user_name, login.actions) == (token.id, owner, {"pull"})
    assert await services.tokens.login(other, secret) is None
    assert await services.tokens.login(owner, secret[:-1] + "x") is None
    assert await services.tokens.login(owner, "mrt_0000000000000000_guess") is None
    assert (await services.tokens.list(owner))[0].last_used_at is not None


async def test_a_revoked_token_stops_working_at_once(services: Services) -> None:
    owner, other = await new_user(services), await new_user(services)
    token, secret = await services.tokens.create(owner, "ci", "pull")

    with pytest.raises(ResourceUnknownError):
        await services.tokens.revoke(other, token.id)
    await services.tokens.revoke(owner, token.id)

    assert await services.tokens.login(owner, secret) is None
    assert await services.tokens.find(token.id) is None
    assert await services.tokens.list(owner) == []
    with pytest.raises(ResourceUnknownError, match="you have no token"):
        await services.tokens.revoke(owner, token.id)


async def test_an_expired_token_stops_working(services: Services) -> None:
    owner = await new_user(services)
    token, secret = await services.tokens.create(
        owner, "soon", "pull", expires_at=utc_now() + timedelta(days=1)
    )
    assert await services.tokens.login(owner, secret) is not None

    async with services.database.writing() as connection:
        await connection.execute(
            update(access_tokens)
            .where(access_tokens.c.id == token.id)
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )

    assert await services.tokens.login(owner, secret) is None
    assert await services.tokens.find(token.id) is None


async def test_a_token_may_be_limited_to_an_owned_namespace(services: Services) -> None:
    namespace = unique_name("ns")
    owner = await new_user(services, namespace)
    other_namespace = unique_name("ns")
    await new_user(services, other_namespace)

    token, _secret = await services.tokens.create(owner, "one", "pull", namespace)

    assert token.namespace == namespace
    for name in (other_namespace, unique_name("ns")):
        with pytest.raises(FieldInvalidError, match="you have no namespace") as refused:
            await services.tokens.create(owner, "other", "pull", name)
        assert refused.value.field == "namespace"


async def test_a_malformed_namespace_names_the_namespace_field(services: Services) -> None:
    owner = await new_user(services)

    with pytest.raises(FieldInvalidError) as refused:
        await services.tokens.create(owner, "bad", "pull", "X")

    assert refused.value.field == "namespace"


@pytest.mark.parametrize(
    ("name", "actions", "field"),
    [("", "pull", "name"), ("x" * 65, "pull", "name"), ("ok", "push", "scope")],
)
async def test_bad_fields(services: Services, name: str, actions: str, field: str) -> None:
    owner = await new_user(services)

    with pytest.raises(FieldInvalidError) as refused:
        await services.tokens.create(owner, name, actions)

    assert refused.value.field == field


async def test_expiry_in_the_past_and_duplicate_names_are_refused(services: Services) -> None:
    owner = await new_user(services)
    await services.tokens.create(owner, "ci", "pull")

    with pytest.raises(FieldInvalidError) as past:
        await services.tokens.create(owner, "old", "pull", expires_at=utc_now())
    with pytest.raises(ConflictError, match="a token named 'ci' already"):
        await services.tokens.create(owner, "ci", "pull,push")

    assert past.value.field == "expires_at"


async def test_simultaneous_tokens_of_one_name_make_one(services: Services) -> None:
    owner = await new_user(services)

    results = await asyncio.gather(
        *(services.tokens.create(owner, "same", "pull") for _ in range(4)), return_exceptions=True
    )

    assert sum(isinstance(result, tuple) for result in results) == 1
    assert all(
        isinstance(result, ConflictError) for result in results if not isinstance(result, tuple)
    )
