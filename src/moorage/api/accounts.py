"""Accounts: sign-up, the caller's account, activation and resets, and admin management."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from moorage.accounts.rules import validate_password
from moorage.accounts.users import User
from moorage.api.deps import CurrentAdmin, CurrentUser, ServicesDep
from moorage.api.models import (
    Activation,
    NewPassword,
    NewUser,
    PasswordChange,
    SignUp,
    UserOut,
)
from moorage.errors import DeniedError, FieldInvalidError, UnauthorizedError

router = APIRouter(tags=["accounts"])


def user_out(user: User) -> UserOut:
    """The API view of an account."""
    return UserOut(name=user.name, is_admin=user.is_admin, is_activated=user.is_activated)


def registry_host(request: Request) -> str:
    """The host:port clients use to reach the registry."""
    public_url = request.app.state.services.settings.public_url
    if public_url:
        return str(public_url).split("://", 1)[1]
    return request.url.netloc


@router.post("/signup", status_code=201)
async def sign_up(body: SignUp, services: ServicesDep) -> UserOut:
    """Create one's own account, where the operator turned sign-up on."""
    if not services.settings.auth.allow_signup:
        raise DeniedError("sign-up is turned off; ask an administrator for an account")
    return user_out(await services.accounts.create(body.name, body.password))


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    """The signed-in account."""
    return user_out(user)


@router.put("/me/password", status_code=204)
async def change_password(
    body: PasswordChange, user: CurrentUser, services: ServicesDep
) -> Response:
    """Replace one's account password, proving the current one."""
    try:
        await services.accounts.sign_in(user.name, body.current_password)
    except UnauthorizedError:
        raise FieldInvalidError("current_password", "the current password is wrong") from None
    validate_password(body.new_password, "new_password")
    await services.accounts.set_account_password(user.name, body.new_password)
    return Response(status_code=204)


@router.put("/me/registry-password")
async def set_registry_password(
    body: NewPassword, user: CurrentUser, services: ServicesDep, request: Request
) -> Activation:
    """Activate the registry, or reset its password: the old one stops working at once."""
    await services.accounts.set_registry_password(user.name, body.password)
    host = registry_host(request)
    return Activation(
        account=user.name,
        login_commands=[
            f"docker login {host} -u {user.name}",
            f"podman login {host} -u {user.name}",
        ],
    )


@router.get("/users")
async def list_users(_admin: CurrentAdmin, services: ServicesDep) -> list[UserOut]:
    """Every account (admins only)."""
    return [user_out(user) for user in await services.accounts.list()]


@router.post("/users", status_code=201)
async def create_user(body: NewUser, _admin: CurrentAdmin, services: ServicesDep) -> UserOut:
    """Create an account (admins only)."""
    return user_out(await services.accounts.create(body.name, body.password, body.is_admin))


@router.put("/users/{name}/password", status_code=204)
async def reset_user_password(
    name: str, body: NewPassword, _admin: CurrentAdmin, services: ServicesDep
) -> Response:
    """Set another account's account password (admins only)."""
    await services.accounts.set_account_password(name, body.password)
    return Response(status_code=204)
