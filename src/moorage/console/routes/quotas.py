"""Quotas: what one uses of each limit, asking for more, and the answers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.accounts.quotas import LIMIT_NAMES
from moorage.console.forms import FormErrors, form_errors, optional_int, read_form
from moorage.console.pages import current_user, page, redirect, render, services_of
from moorage.errors import FieldInvalidError

LIMIT_LABELS = {
    "namespaces": "Namespaces",
    "repositories": "Repositories",
    "tags_per_repository": "Tags per repository",
}


def wanted_limits(values: dict[str, str]) -> dict[str, int | None]:
    """The limits typed into a form; empty ones are left out."""
    wanted = {name: optional_int(values, name, LIMIT_LABELS[name]) for name in LIMIT_NAMES}
    return {name: value for name, value in wanted.items() if value is not None}


async def quota_page(
    request: Request,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """Usage against each limit, the form to ask for more, and one's requests."""
    user = current_user(request)
    quotas = services_of(request).quotas

    usage = await quotas.usage(user.name)
    requests = await quotas.list_requests(user.name)

    context = {
        "usage": usage,
        "requests": requests,
        "labels": LIMIT_LABELS,
        "errors": errors or FormErrors(),
        "values": values or {},
    }
    return render(request, "quota.html", context, status)


async def request_quota(request: Request) -> Response:
    """Ask the administrators for higher limits, with a reason."""
    values = await read_form(request)
    user = current_user(request)

    try:
        wanted = wanted_limits(values)
        await services_of(request).quotas.request_more(user.name, wanted, values.get("reason", ""))
    except FieldInvalidError as exc:
        return await quota_page(request, form_errors(exc), values, 400)

    return redirect(request, "/quota", "Your request is sent. An administrator will answer it.")


ROUTES = [
    page("/quota", quota_page),
    page("/quota", request_quota, ["POST"]),
]
