"""Signing in and out, signing up, the account password, and the registry password."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.api.accounts import registry_host
from moorage.auth.controller import client_address
from moorage.console.forms import FormErrors, field_error, form_errors, read_form
from moorage.console.pages import (
    Access,
    current_user,
    local_path,
    page,
    redirect,
    render,
    services_of,
)
from moorage.console.security import session_holder
from moorage.console.sessions import Session
from moorage.errors import (
    ConflictError,
    DeniedError,
    FieldInvalidError,
    TooManyRequestsError,
    UnauthorizedError,
)


async def home(request: Request) -> Response:
    """Signed in: the namespaces; otherwise the sign-in page."""
    if request.state.user is None:
        return redirect(request, "/sign-in")
    return redirect(request, "/namespaces")


async def sign_in_page(
    request: Request, errors: FormErrors | None = None, name: str = "", status: int = 200
) -> Response:
    """The sign-in form."""
    if request.state.user is not None and errors is None:
        return redirect(request, "/")
    wanted = local_path(request.query_params.get("next"))
    context = {"errors": errors or FormErrors(), "name": name, "next": wanted}
    return render(request, "sign_in.html", context, status)


async def sign_in(request: Request) -> Response:
    """Check the account password; a new session on success."""
    values = await read_form(request)
    name, password = values.get("name", ""), values.get("password", "")
    services = services_of(request)
    keys = [f"account:{name[:64]}", f"address:{client_address(request)}"]

    try:
        await services.limiter.check(keys)
        user = await services.accounts.sign_in(name, password)
    except TooManyRequestsError as exc:
        problem = f"Too many failed sign-ins. Wait {exc.retry_after} seconds and try again."
        return await sign_in_page(request, FormErrors(general=problem), name, 429)
    except UnauthorizedError:
        await services.limiter.record_failure(keys)
        problem = "The account name or the password is wrong."
        return await sign_in_page(request, FormErrors(general=problem), name, 400)

    session_holder(request.scope).replace(Session.signed_in(user.name))
    return redirect(request, local_path(values.get("next")))


async def sign_out(request: Request) -> Response:
    """End the session."""
    session_holder(request.scope).replace(Session.anonymous())
    return redirect(request, "/sign-in", "You are signed out.")


async def sign_up_page(
    request: Request, errors: FormErrors | None = None, name: str = "", status: int = 200
) -> Response:
    """The sign-up form, where the operator turned sign-up on."""
    if not services_of(request).settings.auth.allow_signup:
        raise DeniedError("sign-up is turned off here; ask an administrator for an account")
    context = {"errors": errors or FormErrors(), "name": name}
    return render(request, "sign_up.html", context, status)


async def sign_up(request: Request) -> Response:
    """Create an account and sign in to it."""
    values = await read_form(request)
    name, password = values.get("name", ""), values.get("password", "")
    services = services_of(request)
    if not services.settings.auth.allow_signup:
        raise DeniedError("sign-up is turned off here; ask an administrator for an account")

    try:
        _check_repeated(password, values.get("password_again", ""))
        user = await services.accounts.create(name, password)
    except (FieldInvalidError, ConflictError) as exc:
        errors = form_errors(exc, conflict_field="name")
        return await sign_up_page(request, errors, name, 400)

    session_holder(request.scope).replace(Session.signed_in(user.name))
    return redirect(request, "/registry-password", "Welcome! Your account is ready.")


async def account_page(
    request: Request, errors: FormErrors | None = None, status: int = 200
) -> Response:
    """The account: its name, role, and a form to change its password."""
    return render(request, "account.html", {"errors": errors or FormErrors()}, status)


async def change_password(request: Request) -> Response:
    """Replace the account password, proving the current one."""
    values = await read_form(request)
    user = current_user(request)
    accounts = services_of(request).accounts

    try:
        await accounts.sign_in(user.name, values.get("current_password", ""))
    except UnauthorizedError:
        errors = field_error("current_password", "This is not your current password.")
        return await account_page(request, errors, 400)
    try:
        _check_repeated(values.get("new_password", ""), values.get("new_password_again", ""))
        await accounts.set_account_password(user.name, values.get("new_password", ""))
    except FieldInvalidError as exc:
        errors = form_errors(
            exc, {"password": "new_password", "password_again": "new_password_again"}
        )
        return await account_page(request, errors, 400)

    return redirect(request, "/account", "Your account password is changed.")


async def registry_password_page(
    request: Request, errors: FormErrors | None = None, status: int = 200
) -> Response:
    """Registry access: set or reset the password `docker login` takes, and how to log in."""
    user = current_user(request)
    host = registry_host(request)
    secure = (services_of(request).settings.public_url or str(request.url)).startswith("https://")
    tls_flag = "" if secure else " --tls-verify=false"
    context = {
        "errors": errors or FormErrors(),
        "insecure": not secure,
        "login_commands": [
            ("docker", f"docker login {host} -u {user.name}"),
            ("podman", f"podman login{tls_flag} {host} -u {user.name}"),
        ],
    }
    return render(request, "registry_password.html", context, status)


async def set_registry_password(request: Request) -> Response:
    """Activate the registry, or reset its password; the old one stops working at once."""
    values = await read_form(request)
    user = current_user(request)
    password = values.get("password", "")

    try:
        _check_repeated(password, values.get("password_again", ""))
        await services_of(request).accounts.set_registry_password(user.name, password)
    except FieldInvalidError as exc:
        return await registry_password_page(request, form_errors(exc), 400)

    done = "reset: log in again with the new one" if user.is_activated else "set"
    return redirect(request, "/registry-password", f"Your registry password is {done}.")


def _check_repeated(password: str, again: str) -> None:
    if password != again:
        raise FieldInvalidError("password_again", "the two passwords are not the same")


ROUTES = [
    page("/", home, access=Access.ANYONE),
    page("/sign-in", sign_in_page, access=Access.ANYONE),
    page("/sign-in", sign_in, ["POST"], access=Access.ANYONE),
    page("/sign-out", sign_out, ["POST"], access=Access.ANYONE),
    page("/sign-up", sign_up_page, access=Access.ANYONE),
    page("/sign-up", sign_up, ["POST"], access=Access.ANYONE),
    page("/account", account_page),
    page("/account", change_password, ["POST"]),
    page("/registry-password", registry_password_page),
    page("/registry-password", set_registry_password, ["POST"]),
]
