"""A repository's page: its tags; deleting a tag, or the whole repository.

Repository names hold slashes, so actions live under `/-/`, which no repository name can
contain as a component.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.api.namespaces import owned_repository
from moorage.console.forms import FormErrors, form_errors, read_form
from moorage.console.images import describe_tag
from moorage.console.pages import current_user, page, redirect, render, services_of, url_path
from moorage.errors import FieldInvalidError

TAG_PAGE = 25


async def _repository(request: Request) -> str:
    """The repository in the path, if the caller owns it; unknown otherwise."""
    name: str = request.path_params["repository"]
    services = services_of(request)
    return await owned_repository(services, current_user(request), name)


async def repository_page(request: Request) -> Response:
    """The repository's tags: digest, size, platforms, when pushed, and how to pull."""
    repository = await _repository(request)
    after = request.query_params.get("after") or None
    services = services_of(request)

    found = await services.catalog.list_tags(repository, TAG_PAGE + 1, after)
    tags = [await describe_tag(services, repository, tag) for tag in found[:TAG_PAGE]]

    context = {
        "repository": repository,
        "namespace": repository.split("/", 1)[0],
        "short_name": repository.split("/", 1)[1],
        "tags": tags,
        "after": after,
        "next_after": found[TAG_PAGE - 1].name if len(found) > TAG_PAGE else None,
        "keeps_deleted": services.deletion.keeps_deleted,
    }
    return render(request, "repository.html", context)


async def delete_tag(request: Request) -> Response:
    """Delete one tag; it stays restorable for the deployment's window."""
    repository = await _repository(request)
    tag = request.path_params["tag"]
    services = services_of(request)

    await services.deletion.delete_tag(repository, tag, current_user(request).name)

    notice = f"Tag {tag} is deleted."
    if services.deletion.keeps_deleted:
        notice += " You can restore it from Deleted items."
    return redirect(request, url_path("repositories", repository), notice)


async def delete_repository_page(
    request: Request, errors: FormErrors | None = None, status: int = 200
) -> Response:
    """Deleting a repository: what goes, a backup link, and the name to type to confirm."""
    repository = await _repository(request)
    services = services_of(request)
    usage = await services.quotas.usage(current_user(request).name)

    context = {
        "repository": repository,
        "namespace": repository.split("/", 1)[0],
        "tag_count": usage.tags.get(repository, 0),
        "keeps_deleted": services.deletion.keeps_deleted,
        "retention": services.settings.deleted_retention,
        "errors": errors or FormErrors(),
    }
    return render(request, "delete_repository.html", context, status)


async def delete_repository(request: Request) -> Response:
    """Delete the repository and all its tags, if the typed name matches."""
    repository = await _repository(request)
    values = await read_form(request)

    try:
        await services_of(request).deletion.delete_repository(
            repository, values.get("confirm", ""), current_user(request).name
        )
    except FieldInvalidError as exc:
        return await delete_repository_page(request, form_errors(exc), 400)

    namespace = repository.split("/", 1)[0]
    return redirect(request, url_path("namespaces", namespace), f"{repository} is deleted.")


ROUTES = [
    page("/repositories/{repository:path}/-/tags/{tag}/delete", delete_tag, ["POST"]),
    page("/repositories/{repository:path}/-/delete", delete_repository_page),
    page("/repositories/{repository:path}/-/delete", delete_repository, ["POST"]),
    page("/repositories/{repository:path}", repository_page),
]
