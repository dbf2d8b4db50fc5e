"""Quotas: one's usage, requests for more, and the administrators' overrides and answers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from moorage.accounts.quotas import QuotaRequest, Usage
from moorage.api.deps import CurrentAdmin, CurrentUser, ServicesDep
from moorage.api.models import (
    LimitsIn,
    LimitsOut,
    NewQuotaRequest,
    QuotaDecision,
    QuotaOut,
    QuotaRequestOut,
)
from moorage.errors import DeniedError

router = APIRouter(tags=["quotas"])


def quota_out(usage: Usage) -> QuotaOut:
    """The API view of an account's usage."""
    return QuotaOut(
        account=usage.account,
        limits=LimitsOut(**asdict(usage.limits)),
        repositories=usage.repositories,
        namespaces=usage.namespaces,
        tags_per_repository=usage.tags,
    )


def request_out(request: QuotaRequest) -> QuotaRequestOut:
    """The API view of a quota request."""
    return QuotaRequestOut(**asdict(request))


@router.get("/quota")
async def my_quota(user: CurrentUser, services: ServicesDep) -> QuotaOut:
    """The caller's limits and usage."""
    return quota_out(await services.quotas.usage(user.name))


@router.get("/users/{name}/quota")
async def user_quota(name: str, _admin: CurrentAdmin, services: ServicesDep) -> QuotaOut:
    """An account's limits and usage (admins only)."""
    return quota_out(await services.quotas.usage(name))


@router.put("/users/{name}/quota")
async def set_user_quota(
    name: str, body: LimitsIn, admin: CurrentAdmin, services: ServicesDep
) -> QuotaOut:
    """Override an account's limits (admins only); recorded with who did it."""
    await services.quotas.set_limits(name, body.wanted(), changed_by=admin.name)
    return quota_out(await services.quotas.usage(name))


@router.get("/users/{name}/quota/history")
async def quota_history(
    name: str, _admin: CurrentAdmin, services: ServicesDep
) -> list[dict[str, object]]:
    """Every change of an account's limits (admins only)."""
    return await services.quotas.history(name)


@router.post("/quota-requests", status_code=201)
async def request_quota(
    body: NewQuotaRequest, user: CurrentUser, services: ServicesDep
) -> QuotaRequestOut:
    """Ask for higher limits, with a reason."""
    if body.account is not None and body.account != user.name:
        raise DeniedError("you can request more quota only for your own account")
    wanted = body.model_dump(exclude_unset=True, exclude={"reason", "account"})
    return request_out(await services.quotas.request_more(user.name, wanted, body.reason))


@router.get("/quota-requests")
async def list_quota_requests(
    user: CurrentUser,
    services: ServicesDep,
    status: Annotated[str | None, Query()] = None,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> list[QuotaRequestOut]:
    """The caller's requests; with `all=true`, an administrator sees everyone's."""
    if everyone and not user.is_admin:
        raise DeniedError("only administrators may list everyone's requests")
    account = None if everyone else user.name
    return [request_out(item) for item in await services.quotas.list_requests(account, status)]


@router.post("/quota-requests/{request_id}/approve")
async def approve_quota_request(
    request_id: int, body: QuotaDecision, admin: CurrentAdmin, services: ServicesDep
) -> QuotaRequestOut:
    """Approve a pending request, applying its numbers or the ones given here."""
    granted = body.model_dump(exclude_unset=True, exclude={"comment"})
    decided = await services.quotas.decide(request_id, admin.name, True, body.comment, granted)
    return request_out(decided)


@router.post("/quota-requests/{request_id}/reject")
async def reject_quota_request(
    request_id: int, body: QuotaDecision, admin: CurrentAdmin, services: ServicesDep
) -> QuotaRequestOut:
    """Reject a pending request, with a comment for the requester."""
    return request_out(await services.quotas.decide(request_id, admin.name, False, body.comment))
