"""Administration: accounts, their limits and passwords, and answers to quota requests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.accounts.quotas import PENDING
from moorage.console.forms import FormErrors, form_errors, read_form
from moorage.console.pages import (
    Access,
    current_user,
    page,
    redirect,
    render,
    services_of,
    url_path,
)
from moorage.console.routes.quotas import LIMIT_LABELS, wanted_limits
from moorage.errors import ConflictError, FieldInvalidError, ResourceUnknownError

RECENT_DECISIONS = 20


async def users_page(
    request: Request,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """Every account, and a form for a new one."""
    accounts = await services_of(request).accounts.list()
    context = {"accounts": accounts, "errors": errors or FormErrors(), "values": values or {}}
    return render(request, "admin_users.html", context, status)


async def create_user(request: Request) -> Response:
    """A new account, an administrator if ticked."""
    values = await read_form(request)
    name = values.get("name", "")

    try:
        await services_of(request).accounts.create(
            name, values.get("password", ""), values.get("is_admin") == "on"
        )
    except (FieldInvalidError, ConflictError) as exc:
        return await users_page(request, form_errors(exc, conflict_field="name"), values, 400)

    return redirect(request, "/admin/users", f"Account {name} is created.")


async def user_page(
    request: Request,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """One account: its usage and limits, and a new account password."""
    services = services_of(request)
    account = await services.accounts.get(request.path_params["name"])

    usage = await services.quotas.usage(account.name)

    context = {
        "account": account,
        "usage": usage,
        "labels": LIMIT_LABELS,
        "errors": errors or FormErrors(),
        "values": values or {},
    }
    return render(request, "admin_user.html", context, status)


async def set_user_limits(request: Request) -> Response:
    """Override an account's limits; recorded with who did it."""
    values = await read_form(request)
    name = request.path_params["name"]

    try:
        wanted = wanted_limits(values)
        await services_of(request).quotas.set_limits(name, wanted, current_user(request).name)
    except FieldInvalidError as exc:
        return await user_page(request, form_errors(exc), values, 400)

    return redirect(request, url_path("admin", "users", name), f"Limits of {name} are saved.")


async def reset_user_password(request: Request) -> Response:
    """Give an account a new account password."""
    values = await read_form(request)
    name = request.path_params["name"]

    try:
        await services_of(request).accounts.set_account_password(name, values.get("password", ""))
    except FieldInvalidError as exc:
        return await user_page(request, form_errors(exc), status=400)

    notice = f"The account password of {name} is changed."
    return redirect(request, url_path("admin", "users", name), notice)


async def quota_requests_page(request: Request) -> Response:
    """Pending quota requests to answer, and recent answers."""
    quotas = services_of(request).quotas

    everyone = await quotas.list_requests()

    context = {
        "pending": [item for item in everyone if item.status == PENDING],
        "decided": [item for item in everyone if item.status != PENDING][:RECENT_DECISIONS],
        "labels": LIMIT_LABELS,
    }
    return render(request, "admin_quota_requests.html", context)


async def decide_quota_request(request: Request) -> Response:
    """Approve a request (applying its numbers) or reject it, with an optional comment."""
    values = await read_form(request)
    request_id = int(request.path_params["request_id"])
    decision = request.path_params["decision"]
    if decision not in ("approve", "reject"):
        raise ResourceUnknownError(f"there is no decision {decision!r}")
    comment = values.get("comment") or None

    decided = await services_of(request).quotas.decide(
        request_id, current_user(request).name, decision == "approve", comment
    )

    return redirect(
        request, "/admin/quota-requests", f"The request of {decided.account} is {decided.status}."
    )


ROUTES = [
    page("/admin/users", users_page, access=Access.ADMIN),
    page("/admin/users", create_user, ["POST"], access=Access.ADMIN),
    page("/admin/users/{name}", user_page, access=Access.ADMIN),
    page("/admin/users/{name}/limits", set_user_limits, ["POST"], access=Access.ADMIN),
    page("/admin/users/{name}/password", reset_user_password, ["POST"], access=Access.ADMIN),
    page("/admin/quota-requests", quota_requests_page, access=Access.ADMIN),
    page(
        "/admin/quota-requests/{request_id:int}/{decision:str}",
        decide_quota_request,
        ["POST"],
        access=Access.ADMIN,
    ),
]
