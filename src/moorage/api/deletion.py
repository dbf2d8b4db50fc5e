"""Deleting tags and repositories, listing what is restorable, restoring it, and backups."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from moorage.api.deps import CurrentUser, ServicesDep
from moorage.api.models import DeletedItemOut
from moorage.api.namespaces import owned_repository
from moorage.oci.reference import validate_tag

router = APIRouter(tags=["deletion and backups"])


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


@router.get("/repositories/{repository:path}/export", response_class=StreamingResponse)
async def export_repository(
    repository: str,
    user: CurrentUser,
    services: ServicesDep,
    tag: Annotated[str | None, Query()] = None,
) -> StreamingResponse:
    """Every tag of a repository (or one) as a tar that `skopeo copy oci-archive:` reads."""
    await owned_repository(services, user, repository)
    if tag is not None:
        validate_tag(tag)

    # Planned before the first byte, so that a missing tag or blob gets a proper error.
    plan = await services.archives.plan_export(repository, tag)
    headers = {
        "Content-Disposition": f'attachment; filename="{plan.filename}"',
        "Content-Length": str(plan.length),
    }
    return StreamingResponse(
        services.archives.stream(plan), media_type="application/x-tar", headers=headers
    )
