"""Namespaces, their repositories, and repositories' tags, for their owner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from moorage.accounts.namespaces import Namespace
from moorage.accounts.users import User
from moorage.api.accounts import registry_host
from moorage.api.deps import CurrentUser, ServicesDep
from moorage.api.models import (
    NamespaceOut,
    NewNamespace,
    NewRepository,
    RepositoryOut,
    RepositoryPage,
    TagOut,
    TagPage,
)
from moorage.errors import FieldInvalidError, NameInvalidError, NameUnknownError
from moorage.oci.reference import validate_repository_name
from moorage.services import Services

router = APIRouter(tags=["namespaces and repositories"])

PageSize = Annotated[int, Query(ge=1, le=1000)]


def namespace_out(namespace: Namespace) -> NamespaceOut:
    """The API view of a namespace."""
    return NamespaceOut(
        name=namespace.name,
        repository_count=namespace.repository_count,
        created_at=namespace.created_at,
    )


async def owned_repository(services: Services, user: User, repository: str) -> str:
    """`repository`, if it lies in a namespace of `user`; unknown otherwise, as if missing."""
    namespace = repository.split("/", 1)[0]
    if "/" not in repository or await services.namespaces.owner_id(namespace) != user.id:
        raise NameUnknownError(f"repository {repository} is unknown")
    return repository


@router.get("/namespaces")
async def list_namespaces(user: CurrentUser, services: ServicesDep) -> list[NamespaceOut]:
    """The caller's namespaces."""
    return [namespace_out(item) for item in await services.namespaces.list_owned(user.name)]


@router.post("/namespaces", status_code=201)
async def create_namespace(
    body: NewNamespace, user: CurrentUser, services: ServicesDep
) -> NamespaceOut:
    """A new namespace owned by the caller."""
    return namespace_out(await services.namespaces.create(body.name, user.name))


@router.delete("/namespaces/{name}", status_code=204)
async def delete_namespace(name: str, user: CurrentUser, services: ServicesDep) -> Response:
    """Delete one of the caller's namespaces, if it holds no repositories."""
    await services.namespaces.delete(name, user.name)
    return Response(status_code=204)


@router.get("/namespaces/{name}/repositories")
async def list_repositories(
    name: str,
    user: CurrentUser,
    services: ServicesDep,
    n: PageSize = 100,
    last: str | None = None,
    search: str | None = None,
) -> RepositoryPage:
    """The repositories of one of the caller's namespaces, a page at a time."""
    await services.namespaces.get(name, user.name)

    found = await services.catalog.list_repositories(name, n + 1, last, search)
    page = [
        RepositoryOut(name=r.name, tag_count=r.tag_count, created_at=r.created_at) for r in found
    ]
    return RepositoryPage(
        repositories=page[:n], next_last=page[n - 1].name if len(page) > n else None
    )


@router.post("/namespaces/{name}/repositories", status_code=201)
async def create_repository(
    name: str, body: NewRepository, user: CurrentUser, services: ServicesDep
) -> RepositoryOut:
    """An empty repository in one of the caller's namespaces, before its first push."""
    await services.namespaces.get(name, user.name)
    try:
        repository = validate_repository_name(f"{name}/{body.name}")
    except NameInvalidError as exc:
        raise FieldInvalidError("name", exc.message) from None

    created = await services.catalog.create(repository)
    return RepositoryOut(name=created.name, tag_count=0, created_at=created.created_at)


@router.get("/repositories/{repository:path}/tags")
async def list_tags(
    repository: str,
    user: CurrentUser,
    services: ServicesDep,
    request: Request,
    n: PageSize = 100,
    last: str | None = None,
) -> TagPage:
    """The tags of one of the caller's repositories, a page at a time."""
    await owned_repository(services, user, repository)

    found = await services.catalog.list_tags(repository, n + 1, last)
    host = registry_host(request)
    page = [
        TagOut(
            name=tag.name,
            digest=tag.digest,
            media_type=tag.media_type,
            manifest_size=tag.manifest_size,
            pushed_at=tag.pushed_at,
            pull_command=f"docker pull {host}/{repository}:{tag.name}",
        )
        for tag in found
    ]
    return TagPage(tags=page[:n], next_last=page[n - 1].name if len(page) > n else None)
