"""Access tokens: create one (its secret shown this once), list them, revoke one."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from moorage.accounts.tokens import AccessToken
from moorage.clock import utc_now
from moorage.console.forms import FormErrors, form_errors, optional_int, read_form
from moorage.console.pages import current_user, page, redirect, render, services_of
from moorage.errors import ConflictError, FieldInvalidError

EXPIRY_DAYS_MAX = 3650


async def tokens_page(
    request: Request,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    created: tuple[AccessToken, str] | None = None,
    status: int = 200,
) -> Response:
    """The caller's tokens and the form for a new one; a new token's secret, once."""
    user = current_user(request)
    services = services_of(request)

    tokens = await services.tokens.list(user.name)
    namespaces = await services.namespaces.list_owned(user.name)

    context = {
        "tokens": tokens,
        "namespaces": namespaces,
        "errors": errors or FormErrors(),
        "values": values or {"scope": "pull"},
        "created": created,
        "now": utc_now(),
    }
    return render(request, "tokens.html", context, status)


async def create_token(request: Request) -> Response:
    """A new token; the answer is the page with its secret, which is never shown again."""
    values = await read_form(request)
    user = current_user(request)

    try:
        days = optional_int(values, "expires_in_days", "The expiry in days")
        if days is not None and not 1 <= days <= EXPIRY_DAYS_MAX:
            raise FieldInvalidError(
                "expires_in_days", f"the expiry is 1 to {EXPIRY_DAYS_MAX} days, or empty for never"
            )
        created = await services_of(request).tokens.create(
            user.name,
            values.get("name", ""),
            values.get("scope", ""),
            values.get("namespace") or None,
            utc_now() + timedelta(days=days) if days else None,
        )
    except (FieldInvalidError, ConflictError) as exc:
        return await tokens_page(
            request, form_errors(exc, conflict_field="name"), values, status=400
        )

    return await tokens_page(request, created=created, status=201)


async def revoke_token(request: Request) -> Response:
    """Revoke a token: it stops working at once."""
    token_id = request.path_params["token_id"]

    await services_of(request).tokens.revoke(current_user(request).name, token_id)

    return redirect(request, "/tokens", "The token is revoked; it no longer works.")


ROUTES = [
    page("/tokens", tokens_page),
    page("/tokens", create_token, ["POST"]),
    page("/tokens/{token_id}/revoke", revoke_token, ["POST"]),
]
