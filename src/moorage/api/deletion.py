"""Deleting tags and repositories, listing what is restorable, restoring it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response

from moorage.api.deps import CurrentUser, ServicesDep
from moorage.api.models import DeletedItemOut
from moorage.api.namespaces import owned_repository

router = APIRouter(tags=["deletion"])


@router.delete("/repositories/{repository:path}/tags/{tag}", status_code=204)
async def delete_tag(
    repository: str, tag: str, user: CurrentUser, services: ServicesDep
) -> Response:
    """Delete one tag; other tags of the same image stay."""
    await owned_repository(services, user, repository)

    await services.deletion.delete_tag(repository, tag, user.name)
    return Response(status_code=204)


@router.delete("/repositories/{repository:path}", status_code=204)
async def delete_repository(
    repository: str,
    user: CurrentUser,
    services: ServicesDep,
    confirm: Annotated[str | None, Query()] = None,
) -> Response:
    """Delete a repository and every tag in it; `confirm` must repeat its name."""
    await owned_repository(services, user, repository)

    await services.deletion.delete_repository(repository, confirm, user.name)
    return Response(status_code=204)


@router.get("/namespaces/{name}/deleted")
async def list_deleted(name: str, user: CurrentUser, services: ServicesDep) -> list[DeletedItemOut]:
    """What was deleted in one of the caller's namespaces and can still be restored."""
    await services.namespaces.get(name, user.name)

    items = await services.deletion.list_deleted(name)
    return [DeletedItemOut(**asdict(item)) for item in items]


@router.post("/namespaces/{name}/deleted/{item_id}/restore")
async def restore(
    name: str, item_id: str, user: CurrentUser, services: ServicesDep
) -> DeletedItemOut:
    """Bring a deleted tag or repository back, with its exact digests."""
    await services.namespaces.get(name, user.name)

    item = await services.deletion.restore(name, item_id)
    return DeletedItemOut(**asdict(item))
