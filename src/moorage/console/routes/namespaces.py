"""Namespaces: list, create, delete when empty; their repositories; what can be restored."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.console.forms import FormErrors, form_errors, read_form
from moorage.console.pages import current_user, page, redirect, render, services_of, url_path
from moorage.errors import ConflictError, DeniedError, FieldInvalidError

REPOSITORY_PAGE = 20


async def namespaces_page(
    request: Request, errors: FormErrors | None = None, name: str = "", status: int = 200
) -> Response:
    """The caller's namespaces, with a form for a new one."""
    user = current_user(request)
    owned = await services_of(request).namespaces.list_owned(user.name)
    context = {"namespaces": owned, "errors": errors or FormErrors(), "name": name}
    return render(request, "namespaces.html", context, status)


async def create_namespace(request: Request) -> Response:
    """A new namespace owned by the caller."""
    values = await read_form(request)
    name = values.get("name", "")

    try:
        await services_of(request).namespaces.create(name, current_user(request).name)
    except (FieldInvalidError, ConflictError, DeniedError) as exc:
        return await namespaces_page(request, form_errors(exc, conflict_field="name"), name, 400)

    return redirect(request, url_path("namespaces", name), f"Namespace {name} is created.")


async def delete_namespace(request: Request) -> Response:
    """Delete one of the caller's namespaces if it is empty; say why not otherwise."""
    name = request.path_params["namespace"]

    try:
        await services_of(request).namespaces.delete(name, current_user(request).name)
    except ConflictError as exc:
        return await namespaces_page(request, form_errors(exc), status=409)

    return redirect(request, "/namespaces", f"Namespace {name} is deleted.")


async def repositories_page(request: Request) -> Response:
    """A namespace's repositories, searched by name, a page at a time."""
    name = request.path_params["namespace"]
    search = request.query_params.get("q", "").strip()
    after = request.query_params.get("after") or None
    services = services_of(request)

    namespace = await services.namespaces.get(name, current_user(request).name)
    found = await services.catalog.list_repositories(name, REPOSITORY_PAGE + 1, after, search)

    context = {
        "namespace": namespace,
        "repositories": found[:REPOSITORY_PAGE],
        "search": search,
        "after": after,
        "next_after": found[REPOSITORY_PAGE - 1].name if len(found) > REPOSITORY_PAGE else None,
    }
    return render(request, "repositories.html", context)


async def deleted_page(
    request: Request, errors: FormErrors | None = None, status: int = 200
) -> Response:
    """What was deleted in a namespace and can still be restored."""
    name = request.path_params["namespace"]
    services = services_of(request)

    namespace = await services.namespaces.get(name, current_user(request).name)
    items = await services.deletion.list_deleted(name)

    context = {"namespace": namespace, "items": items, "errors": errors or FormErrors()}
    return render(request, "deleted.html", context, status)


async def restore_item(request: Request) -> Response:
    """Bring a deleted tag or repository back."""
    name, item_id = request.path_params["namespace"], request.path_params["item"]
    services = services_of(request)
    await services.namespaces.get(name, current_user(request).name)

    try:
        item = await services.deletion.restore(name, item_id)
    except (ConflictError, DeniedError) as exc:
        return await deleted_page(request, form_errors(exc), 409)

    restored = f"{item.repository}:{item.tag}" if item.tag else item.repository
    return redirect(request, url_path("repositories", item.repository), f"{restored} is restored.")


ROUTES = [
    page("/namespaces", namespaces_page),
    page("/namespaces", create_namespace, ["POST"]),
    page("/namespaces/{namespace}", repositories_page),
    page("/namespaces/{namespace}/delete", delete_namespace, ["POST"]),
    page("/namespaces/{namespace}/deleted", deleted_page),
    page("/namespaces/{namespace}/deleted/{item}/restore", restore_item, ["POST"]),
]
