"""Registry logins: a registry password or an access token, with failed logins rate limited."""

from __future__ import annotations

from moorage.accounts.ratelimit import LoginRateLimiter
from moorage.accounts.tokens import AccessTokenService, TokenLogin, looks_like_access_token
from moorage.accounts.users import AccountService, User
from moorage.auth.policy import Grantee
from moorage.auth.signing import RefreshClaims
from moorage.errors import ResourceUnknownError, UnauthorizedError


class RegistryLogin:
    """Turns the credentials of `docker login` into a `Grantee`."""

    def __init__(
        self, accounts: AccountService, tokens: AccessTokenService, limiter: LoginRateLimiter
    ) -> None:
        self._accounts = accounts
        self._tokens = tokens
        self._limiter = limiter

    async def login(self, name: str, secret: str, client_address: str) -> Grantee:
        """The caller, if `secret` is the account's registry password or one of its tokens."""
        keys = [f"account:{name[:64]}", f"address:{client_address}"]
        await self._limiter.check(keys)
        try:
            return await self._login(name, secret)
        except UnauthorizedError:
            await self._limiter.record_failure(keys)
            raise

    async def refresh(self, claims: RefreshClaims) -> Grantee:
        """The caller a refresh token stands for, while its password or token is unchanged."""
        try:
            user = await self._accounts.get(claims.subject)
        except ResourceUnknownError:
            raise UnauthorizedError("the account of this refresh token is gone") from None
        if claims.generation != user.registry_password_generation:
            raise UnauthorizedError("the registry password changed; log in again")
        if claims.token_id is None:
            return _grantee(user, None)
        token = await self._tokens.find(claims.token_id)
        if token is None:
            raise UnauthorizedError("the access token of this login was revoked or expired")
        return _grantee(user, token)

    async def _login(self, name: str, secret: str) -> Grantee:
        # A registry password may look like a token: one that is no live token is tried as one.
        token = await self._tokens.login(name, secret) if looks_like_access_token(secret) else None
        if token is not None:
            return _grantee(await self._accounts.get(name), token)
        return _grantee(await self._accounts.registry_login(name, secret), None)


def _grantee(user: User, token: TokenLogin | None) -> Grantee:
    """The caller: the account, narrowed by the access token it logged in with, if any."""
    if token is None:
        return Grantee(user.id, user.name, user.registry_password_generation)
    return Grantee(
        user.id,
        user.name,
        user.registry_password_generation,
        token.actions,
        token.namespace,
        token.token_id,
    )
