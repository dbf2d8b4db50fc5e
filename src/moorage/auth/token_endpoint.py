"""The token endpoint of the Docker token auth spec: GET with Basic, and the OAuth2 POST form."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from moorage.auth.access import Scope
from moorage.auth.build_access import build_repository, looks_like_jwt, narrow_to_build
from moorage.auth.controller import client_address
from moorage.auth.credentials import BasicCredentials, parse_authorization
from moorage.auth.login import RegistryLogin
from moorage.auth.policy import AccessPolicy, Grantee
from moorage.auth.scopes import merge_scopes, parse_scopes
from moorage.auth.signing import TokenInvalidError, TokenSigner
from moorage.errors import InvalidInputError, UnauthorizedError
from moorage.log import bind_request_fields

BASIC_CHALLENGE = 'Basic realm="moorage"'


@dataclass(frozen=True, slots=True)
class TokenService:
    """What the token endpoint needs, reached through `request.app.state.token_service`."""

    signer: TokenSigner
    login: RegistryLogin
    policy: AccessPolicy

    async def granted(self, grantee: Grantee, requested: list[Scope]) -> list[Scope]:
        """The part of each requested scope the caller may have; empty scopes are dropped."""
        granted = []
        for scope in merge_scopes(requested):
            actions = await self.policy.grant(grantee, scope)
            if actions:
                granted.append(Scope(scope.resource_type, scope.name, actions))
        return granted

    async def build_access(
        self, credentials: BasicCredentials, requested: list[Scope]
    ) -> dict[str, object]:
        """Tokens for a build worker: pull what the owner may, push to the build's repository."""
        try:
            claims = self.signer.verify_access(credentials.secret)
        except TokenInvalidError:
            claims = None
        repository = build_repository(claims) if claims is not None else None
        if claims is None or repository is None or claims.subject != credentials.name:
            raise UnauthorizedError(
                "the build credential is invalid or has expired", challenge=BASIC_CHALLENGE
            )
        grantee = Grantee(claims.user_id, claims.subject, generation=0)
        granted = narrow_to_build(await self.granted(grantee, requested), repository)
        return self.access_token(grantee, granted)

    def access_token(self, grantee: Grantee, scopes: list[Scope]) -> dict[str, object]:
        """The JSON fields of a token response."""
        issued = self.signer.issue_access(
            grantee.user_name, grantee.user_id, grantee.namespace_limit, scopes
        )
        return {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
        }

    def refresh_token(self, grantee: Grantee) -> str:
        """A refresh token for the caller."""
        return self.signer.issue_refresh(grantee.user_name, grantee.generation, grantee.token_id)


def _service(request: Request) -> TokenService:
    service: TokenService = request.app.state.token_service
    return service


def _check_service(service: TokenService, requested: str | None) -> None:
    if requested and requested != service.signer.service:
        raise InvalidInputError(
            f"this token endpoint serves {service.signer.service!r}, not {requested[:80]!r}"
        )


async def get_token(request: Request) -> Response:
    """GET: Basic credentials and `scope` parameters in, a signed token out."""
    service = _service(request)
    _check_service(service, request.query_params.get("service"))
    scopes = parse_scopes(request.query_params.getlist("scope"))
    credentials = parse_authorization(request.headers.get("authorization"))
    if not isinstance(credentials, BasicCredentials):
        raise UnauthorizedError(
            "send the account name and registry password (or an access token) with HTTP Basic",
            challenge=BASIC_CHALLENGE,
        )
    if looks_like_jwt(credentials.secret):
        return JSONResponse(await service.build_access(credentials, scopes))

    grantee = await _challenged(
        service.login.login(credentials.name, credentials.secret, client_address(request))
    )
    body = service.access_token(grantee, await service.granted(grantee, scopes))
    if request.query_params.get("offline_token", "").lower() == "true":
        body["refresh_token"] = service.refresh_token(grantee)
    return JSONResponse(body)


async def post_token(request: Request) -> Response:
    """POST: the OAuth2 password and refresh_token grants that `docker login` uses."""
    service = _service(request)
    form = await request.form()
    _check_service(service, _field(form.get("service")))
    scopes = parse_scopes([_field(form.get("scope")) or ""])
    grant_type = _field(form.get("grant_type"))

    if grant_type == "password":
        name, secret = _field(form.get("username")), _field(form.get("password"))
        if not name or not secret:
            raise InvalidInputError("the password grant needs username and password")
        grantee = await _challenged(service.login.login(name, secret, client_address(request)))
        refresh = service.refresh_token(grantee) if form.get("access_type") == "offline" else None
    elif grant_type == "refresh_token":
        refresh = _field(form.get("refresh_token"))
        try:
            claims = service.signer.verify_refresh(refresh or "")
        except TokenInvalidError:
            raise UnauthorizedError(
                "the refresh token is invalid or has expired", BASIC_CHALLENGE
            ) from None
        grantee = await _challenged(service.login.refresh(claims))
    else:
        raise InvalidInputError("grant_type must be 'password' or 'refresh_token'")

    granted = await service.granted(grantee, scopes)
    body = service.access_token(grantee, granted)
    body["scope"] = " ".join(str(scope) for scope in granted)
    if refresh is not None:
        body["refresh_token"] = refresh
    return JSONResponse(body)


async def _challenged(login: Awaitable[Grantee]) -> Grantee:
    """The caller; a refused login is a 401 that says how to authenticate, as RFC 7235 wants."""
    try:
        grantee = await login
    except UnauthorizedError as exc:
        raise UnauthorizedError(exc.message, BASIC_CHALLENGE) from None
    bind_request_fields(user=grantee.user_name)
    return grantee


def _field(value: object) -> str | None:
    """A form field as text; uploaded files are not fields."""
    return value if isinstance(value, str) else None


TOKEN_ROUTES = [
    Route("/auth/token", get_token, methods=["GET"]),
    Route("/auth/token", post_token, methods=["POST"]),
]
