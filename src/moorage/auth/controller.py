"""The access check of every /v2 request: bearer tokens, or HTTP Basic for curl."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from moorage.auth.access import Principal, Scope
from moorage.auth.credentials import BasicCredentials, BearerCredentials, parse_authorization
from moorage.auth.login import RegistryLogin
from moorage.auth.policy import AccessPolicy, Grantee
from moorage.auth.scopes import challenge
from moorage.auth.signing import AccessClaims, TokenInvalidError, TokenSigner
from moorage.errors import DeniedError, UnauthorizedError
from moorage.log import bind_request_fields


def client_address(request: Request) -> str:
    """The address failed logins are counted against."""
    return request.client.host if request.client else "unknown"


class TokenAccessController:
    """Authorizes /v2 requests against the scopes their routes declare."""

    def __init__(
        self, signer: TokenSigner, login: RegistryLogin, policy: AccessPolicy, realm: str | None
    ) -> None:
        self._signer = signer
        self._login = login
        self._policy = policy
        self._realm = realm

    async def authorize(self, request: Request, scopes: Sequence[Scope]) -> Principal:
        """The caller, if their credentials cover every scope; else 401 with a challenge."""
        try:
            credentials = parse_authorization(request.headers.get("authorization"))
        except UnauthorizedError as exc:
            raise self._refusal(request, exc.message, scopes, "invalid_token") from None
        if credentials is None:
            raise self._refusal(request, "authentication required", scopes)
        if isinstance(credentials, BearerCredentials):
            return self._authorize_bearer(request, credentials, scopes)
        return await self._authorize_basic(request, credentials, scopes)

    async def permits(self, request: Request, scope: Scope) -> bool:
        """Whether this request's credentials also cover `scope`."""
        claims: AccessClaims | None = getattr(request.state, "claims", None)
        if claims is not None:
            return claims.allows(scope)
        grantee: Grantee | None = getattr(request.state, "grantee", None)
        if grantee is None:
            return False
        return scope.actions <= await self._policy.grant(grantee, scope)

    def _authorize_bearer(
        self, request: Request, credentials: BearerCredentials, scopes: Sequence[Scope]
    ) -> Principal:
        # TODO: a token stays valid until it expires after its access token is revoked or the
        # registry password is reset - a client that keeps it can go on for up to
        # auth.token_lifetime_seconds (five minutes by default). New logins are refused at once.
        try:
            claims = self._signer.verify_access(credentials.token)
        except TokenInvalidError:
            raise self._refusal(
                request, "the token is invalid or has expired", scopes, "invalid_token"
            ) from None
        bind_request_fields(user=claims.subject)
        for scope in scopes:
            if not claims.allows(scope):
                granted = claims.access.get((scope.resource_type, scope.name), frozenset())
                raise self._denial(request, scope, scopes, granted)
        request.state.claims = claims
        return Principal(claims.subject, claims.user_id, claims.namespace_limit)

    async def _authorize_basic(
        self, request: Request, credentials: BasicCredentials, scopes: Sequence[Scope]
    ) -> Principal:
        try:
            grantee = await self._login.login(
                credentials.name, credentials.secret, client_address(request)
            )
        except UnauthorizedError as exc:
            raise self._refusal(request, exc.message, scopes) from None
        bind_request_fields(user=grantee.user_name)
        for scope in scopes:
            granted = await self._policy.grant(grantee, scope)
            if not scope.actions <= granted:
                raise self._denial(request, scope, scopes, granted)
        request.state.grantee = grantee
        return Principal(grantee.user_name, grantee.user_id, grantee.namespace_limit)

    def _challenge(self, request: Request, scopes: Sequence[Scope], error: str | None) -> str:
        realm = self._realm or f"{request.url.scheme}://{request.url.netloc}"
        return challenge(f"{realm}/auth/token", self._signer.service, scopes, error)

    def _refusal(
        self, request: Request, message: str, scopes: Sequence[Scope], error: str | None = None
    ) -> UnauthorizedError:
        return UnauthorizedError(message, self._challenge(request, scopes, error))

    def _denial(
        self, request: Request, scope: Scope, scopes: Sequence[Scope], granted: frozenset[str]
    ) -> DeniedError:
        # 403, not the 401 of distribution: clients then fetch a token for the scope in the
        # challenge instead of resending the one they hold (oras-py does only that on 401).
        # The words are the same whether the repository is missing or someone else's; only an
        # owner is ever granted part of a scope, so saying what was granted tells them nothing.
        if scope.resource_type == "repository":
            actions = ",".join(sorted(scope.actions))
            reason = "it does not exist or is not yours"
            if granted:
                reason = f"the credentials used allow only {','.join(sorted(granted))}"
            message = f"{actions} access to repository {scope.name} is denied: {reason}"
        else:
            message = f"access to {scope} is denied"
        return DeniedError(message, self._challenge(request, scopes, "insufficient_scope"))
