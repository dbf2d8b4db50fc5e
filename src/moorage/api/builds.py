"""Builds for their owner: rules, runs, history, logs (live too), and the push webhook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from moorage.api.build_models import (
    BuildLog,
    BuildOut,
    BuildRuleChange,
    BuildRuleOut,
    BuildRun,
    GitCredentialsIn,
    LogLineOut,
    NewBuildRule,
    WebhookResult,
)
from moorage.api.deps import CurrentUser, ServicesDep
from moorage.builds.git import GitCredentials
from moorage.builds.jobs import Build
from moorage.builds.rule_store import BuildRule, RuleSpec
from moorage.builds.rules import validate_ref_pattern
from moorage.services import Services

router = APIRouter(tags=["builds"])


def _credentials(body: GitCredentialsIn | None) -> GitCredentials | None:
    return None if body is None else GitCredentials(body.username, body.token, body.ssh_key)


def webhook_url(request: Request, rule_id: str) -> str:
    """The address GitHub, GitLab or Gitea posts a rule's pushes to."""
    services: Services = request.app.state.services
    base = services.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/api/v1/hooks/builds/{rule_id}"


async def rule_out(services: Services, rule: BuildRule, request: Request) -> BuildRuleOut:
    """The API view of a rule, with the address and secret its webhook needs."""
    return BuildRuleOut(
        id=rule.id,
        **asdict(rule.spec),
        has_credentials=rule.has_credentials,
        webhook_url=webhook_url(request, rule.id),
        webhook_secret=await services.build_rules.webhook_secret(rule.id),
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def build_out(build: Build) -> BuildOut:
    """The API view of a build."""
    fields = {name: getattr(build, name) for name in BuildOut.model_fields}
    return BuildOut(**fields)


@router.post("/builds/rules", status_code=201)
async def create_rule(
    body: NewBuildRule, user: CurrentUser, services: ServicesDep, request: Request
) -> BuildRuleOut:
    """A new build rule for a repository in one of the caller's namespaces."""
    spec = RuleSpec(**body.model_dump(exclude={"credentials"}))

    rule = await services.build_rules.create(user.id, spec, _credentials(body.credentials))
    return await rule_out(services, rule, request)


@router.get("/builds/rules")
async def list_rules(
    user: CurrentUser, services: ServicesDep, request: Request
) -> list[BuildRuleOut]:
    """The caller's build rules."""
    rules = await services.build_rules.list_owned(user.id)
    return [await rule_out(services, rule, request) for rule in rules]


@router.get("/builds/rules/{rule_id}")
async def get_rule(
    rule_id: str, user: CurrentUser, services: ServicesDep, request: Request
) -> BuildRuleOut:
    """One of the caller's build rules."""
    return await rule_out(services, await services.build_rules.get(rule_id, user.id), request)


@router.patch("/builds/rules/{rule_id}")
async def change_rule(
    rule_id: str,
    body: BuildRuleChange,
    user: CurrentUser,
    services: ServicesDep,
    request: Request,
) -> BuildRuleOut:
    """Change some fields of a rule; the paths are checked again."""
    changes = body.model_dump(exclude_unset=True, exclude={"credentials"})
    replace_credentials = "credentials" in body.model_fields_set

    rule = await services.build_rules.update(
        rule_id, user.id, changes, _credentials(body.credentials), replace_credentials
    )
    return await rule_out(services, rule, request)


@router.delete("/builds/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, user: CurrentUser, services: ServicesDep) -> Response:
    """Delete a rule and its build history."""
    await services.build_rules.delete(rule_id, user.id)
    return Response(status_code=204)


@router.post("/builds/rules/{rule_id}/runs", status_code=202)
async def run_rule(
    rule_id: str, user: CurrentUser, services: ServicesDep, body: BuildRun | None = None
) -> BuildOut:
    """Queue a build of the rule, at its own ref or at `ref`."""
    ref = validate_ref_pattern(body.ref) if body and body.ref else None
    rule = await services.build_rules.get(rule_id, user.id)

    return build_out(await services.build_jobs.enqueue(rule, ref, "manual"))


@router.get("/builds")
async def list_builds(
    user: CurrentUser,
    services: ServicesDep,
    rule_id: str | None = None,
    n: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[BuildOut]:
    """The caller's builds, newest first: state, ref, commit, image and duration."""
    return [build_out(build) for build in await services.build_jobs.history(user.id, rule_id, n)]


@router.get("/builds/{build_id}")
async def get_build(build_id: str, user: CurrentUser, services: ServicesDep) -> BuildOut:
    """One of the caller's builds."""
    return build_out(await services.build_jobs.get(build_id, user.id))


@router.post("/builds/{build_id}/cancel")
async def cancel_build(build_id: str, user: CurrentUser, services: ServicesDep) -> BuildOut:
    """Cancel a queued or running build."""
    return build_out(await services.build_jobs.cancel(build_id, user.id))


@router.get("/builds/{build_id}/logs", response_model=None)
async def build_logs(
    build_id: str,
    user: CurrentUser,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
    follow: bool = False,
) -> BuildLog | StreamingResponse:
    """The build's log lines; with `follow=true`, server-sent events until the build ends."""
    build = await services.build_jobs.get(build_id, user.id)

    if follow:
        return StreamingResponse(
            _log_events(services, build.id, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    lines = await services.build_logs.read(build.id, after)
    return BuildLog(
        build_id=build.id,
        state=build.state,
        lines=[LogLineOut(id=line.id, at=line.at, line=line.line) for line in lines],
        next_after=lines[-1].id if lines else after,
    )


async def _log_events(services: Services, build_id: str, after: int) -> AsyncIterator[str]:
    async def finished() -> bool:
        return (await services.build_jobs.get(build_id)).finished

    async for line in services.build_logs.follow(build_id, finished, after=after):
        data = json.dumps({"at": line.at.isoformat(), "line": line.line})
        yield f"id: {line.id}\ndata: {data}\n\n"
    state = (await services.build_jobs.get(build_id)).state
    yield f"event: end\ndata: {json.dumps({'state': state})}\n\n"


@router.post("/hooks/builds/{rule_id}", response_model=None)
async def build_webhook(rule_id: str, request: Request, services: ServicesDep) -> JSONResponse:
    """A push from GitHub, GitLab, Gitea or plain JSON; verified by its signature or secret."""
    body = await request.body()

    build = await services.build_hooks.receive(rule_id, request.headers, body)
    if build is None:
        result = WebhookResult(build_id=None, detail="no build: not a push of a matching ref")
        return JSONResponse(result.model_dump(), status_code=200)
    result = WebhookResult(build_id=build.id, detail=f"build {build.id} queued")
    return JSONResponse(result.model_dump(), status_code=202)
