"""Who is calling the management API: HTTP Basic with the account password, or a console session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from moorage.accounts.users import User
from moorage.auth.controller import client_address
from moorage.auth.credentials import BasicCredentials, parse_authorization
from moorage.errors import DeniedError, UnauthorizedError
from moorage.log import bind_request_fields
from moorage.services import Services

API_CHALLENGE = 'Basic realm="moorage management API"'


def services_of(request: Request) -> Services:
    """The deployment's services."""
    services: Services = request.app.state.services
    return services


async def current_user(request: Request) -> User:
    """The signed-in account; 401 without valid credentials."""
    user = await _authenticate(request)
    bind_request_fields(user=user.name)
    return user


async def _authenticate(request: Request) -> User:
    services = services_of(request)
    session_user = getattr(request.state, "session_user", None)
    if session_user is not None:
        return await services.accounts.get(session_user)
    try:
        credentials = parse_authorization(request.headers.get("authorization"))
    except UnauthorizedError as exc:
        raise UnauthorizedError(exc.message, API_CHALLENGE) from None
    if not isinstance(credentials, BasicCredentials):
        raise UnauthorizedError(
            "sign in with HTTP Basic: account name and account password", API_CHALLENGE
        )
    keys = [f"account:{credentials.name[:64]}", f"address:{client_address(request)}"]
    await services.limiter.check(keys)
    try:
        return await services.accounts.sign_in(credentials.name, credentials.secret)
    except UnauthorizedError as exc:
        await services.limiter.record_failure(keys)
        raise UnauthorizedError(exc.message, API_CHALLENGE) from None


async def current_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """The signed-in account, if it is an admin."""
    if not user.is_admin:
        raise DeniedError("only administrators may do this")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
CurrentAdmin = Annotated[User, Depends(current_admin)]
ServicesDep = Annotated[Services, Depends(services_of)]
