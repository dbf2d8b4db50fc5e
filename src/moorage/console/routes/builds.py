"""Builds: rules (create, edit, delete), their webhook, runs, history, and a build's live log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.api.builds import webhook_url
from moorage.builds.git import GitCredentials
from moorage.builds.jobs import Build
from moorage.builds.logs import LogLine
from moorage.builds.rule_store import BuildRule, RuleSpec
from moorage.builds.rules import (
    DEFAULT_BUILD_DIR,
    DEFAULT_DOCKERFILE,
    parse_build_arg,
    validate_ref_pattern,
)
from moorage.console.forms import FormErrors, form_errors, read_form
from moorage.console.pages import current_user, page, redirect, render, services_of, url_path
from moorage.errors import ConflictError, FieldInvalidError, ResourceUnknownError
from moorage.services import Services

HISTORY = 50
# A build page shows at most this many lines; the full log stays in the API.
PAGE_LOG_LINES = 20_000
RULE_FIELDS = ("repository", "git_url", "ref", "dockerfile", "build_dir", "tag_template")


def rule_spec(values: dict[str, str]) -> RuleSpec:
    """The rule a form describes; build arguments are `NAME=value` lines."""
    build_args = dict(
        parse_build_arg(line.strip())
        for line in values.get("build_args", "").splitlines()
        if line.strip()
    )
    return RuleSpec(
        repository=values.get("repository", ""),
        git_url=values.get("git_url", ""),
        ref=values.get("ref", ""),
        dockerfile=values.get("dockerfile", "") or DEFAULT_DOCKERFILE,
        build_dir=values.get("build_dir", "") or DEFAULT_BUILD_DIR,
        tag_template=values.get("tag_template") or None,
        build_args=build_args,
    )


def credentials_of(values: dict[str, str]) -> GitCredentials | None:
    """The git credentials typed into a form, or None if none were."""
    username, token = values.get("git_username") or None, values.get("git_token") or None
    ssh_key = values.get("ssh_key") or None
    if not (username or token or ssh_key):
        return None
    return GitCredentials(username=username, token=token, ssh_key=ssh_key)


def rule_form_values(rule: BuildRule | None) -> dict[str, str]:
    """What the rule form shows: the rule's fields, or the defaults for a new one."""
    if rule is None:
        return {"dockerfile": DEFAULT_DOCKERFILE, "build_dir": DEFAULT_BUILD_DIR}
    spec = rule.spec
    values = {name: getattr(spec, name) or "" for name in RULE_FIELDS}
    values["build_args"] = "\n".join(f"{key}={value}" for key, value in spec.build_args.items())
    return values


def rule_errors(exc: FieldInvalidError | ResourceUnknownError) -> FormErrors:
    """A refused rule's errors beside its fields; an unowned namespace is the repository's."""
    if isinstance(exc, ResourceUnknownError):
        return FormErrors(fields={"repository": form_errors(exc).general or ""})
    field = "build_args" if exc.field.startswith("build_args") else exc.field
    return form_errors(exc, {field: field, "credentials": "git_token"})


async def builds_page(request: Request) -> Response:
    """The caller's build rules and recent builds."""
    user = current_user(request)
    services = services_of(request)

    rules = await services.build_rules.list_owned(user.id)
    history = await services.build_jobs.history(user.id, None, HISTORY)

    context = {"rules": rules, "builds": history, "repositories": _repositories(rules)}
    return render(request, "builds.html", context)


async def new_rule_page(
    request: Request,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The form for a new build rule, with the defaults filled in."""
    namespaces = await services_of(request).namespaces.list_owned(current_user(request).name)
    context = {
        "rule": None,
        "values": values or rule_form_values(None),
        "errors": errors or FormErrors(),
        "namespaces": namespaces,
    }
    return render(request, "build_rule_form.html", context, status)


async def create_rule(request: Request) -> Response:
    """Store a new build rule."""
    values = await read_form(request)
    services = services_of(request)

    try:
        spec, credentials = rule_spec(values), credentials_of(values)
        rule = await services.build_rules.create(current_user(request).id, spec, credentials)
    except (FieldInvalidError, ResourceUnknownError) as exc:
        return await new_rule_page(request, rule_errors(exc), values, 400)

    notice = "The build rule is saved. Paste its webhook into your git host, or run it now."
    return redirect(request, url_path("builds", "rules", rule.id), notice)


async def rule_page(
    request: Request,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """One rule: its form, its webhook, a run button, and its history."""
    user = current_user(request)
    services = services_of(request)

    rule = await services.build_rules.get(request.path_params["rule_id"], user.id)
    history = await services.build_jobs.history(user.id, rule.id, HISTORY)

    context = {
        "rule": rule,
        "values": values or rule_form_values(rule),
        "errors": errors or FormErrors(),
        "builds": history,
        "webhook_url": webhook_url(request, rule.id),
        "repositories": _repositories([rule]),
    }
    return render(request, "build_rule.html", context, status)


async def update_rule(request: Request) -> Response:
    """Change a rule; stored credentials stay unless replaced or removed."""
    values = await read_form(request)
    user = current_user(request)
    rules = services_of(request).build_rules
    rule = await rules.get(request.path_params["rule_id"], user.id)

    try:
        spec, credentials = rule_spec(values), credentials_of(values)
        changes = {name: getattr(spec, name) for name in (*RULE_FIELDS, "build_args")}
        replace = credentials is not None or values.get("remove_credentials") == "on"
        await rules.update(rule.id, user.id, changes, credentials, replace)
    except (FieldInvalidError, ResourceUnknownError) as exc:
        return await rule_page(request, rule_errors(exc), values, 400)

    return redirect(request, url_path("builds", "rules", rule.id), "The build rule is saved.")


async def delete_rule(request: Request) -> Response:
    """Delete a rule and its build history."""
    user = current_user(request)

    await services_of(request).build_rules.delete(request.path_params["rule_id"], user.id)

    return redirect(request, "/builds", "The build rule and its history are deleted.")


async def run_rule(request: Request) -> Response:
    """Queue a build of the rule, at its ref or at the one typed in."""
    values = await read_form(request)
    user = current_user(request)
    services = services_of(request)
    rule = await services.build_rules.get(request.path_params["rule_id"], user.id)

    try:
        ref = validate_ref_pattern(values["ref"]) if values.get("ref") else None
    except FieldInvalidError as exc:
        errors = form_errors(exc, {"ref": "run_ref"})
        return await rule_page(request, errors, status=400)
    build = await services.build_jobs.enqueue(rule, ref, "manual")

    return redirect(request, url_path("builds", build.id), "The build is queued.")


async def build_page(request: Request) -> Response:
    """One build: how it went, and its log, followed live while it runs."""
    user = current_user(request)
    services = services_of(request)

    build = await services.build_jobs.get(request.path_params["build_id"], user.id)
    rule = await services.build_rules.get(build.rule_id, user.id)
    lines = await _log_lines(services, build)

    context = {
        "build": build,
        "rule": rule,
        "lines": lines,
        "last_line_id": lines[-1].id if lines else 0,
    }
    return render(request, "build.html", context)


async def cancel_build(request: Request) -> Response:
    """Cancel a queued or running build."""
    user = current_user(request)
    build_id = request.path_params["build_id"]

    try:
        await services_of(request).build_jobs.cancel(build_id, user.id)
    except ConflictError as exc:
        return redirect(request, url_path("builds", build_id), form_errors(exc).general)

    return redirect(request, url_path("builds", build_id), "Cancelling the build.")


async def _log_lines(services: Services, build: Build) -> list[LogLine]:
    lines: list[LogLine] = []
    after = 0
    while len(lines) < PAGE_LOG_LINES:
        batch = await services.build_logs.read(build.id, after)
        if not batch:
            break
        lines.extend(batch)
        after = batch[-1].id
    return lines


def _repositories(rules: list[BuildRule]) -> dict[str, str]:
    return {rule.id: rule.spec.repository for rule in rules}


ROUTES = [
    page("/builds", builds_page),
    page("/builds/rules/new", new_rule_page),
    page("/builds/rules", create_rule, ["POST"]),
    page("/builds/rules/{rule_id}", rule_page),
    page("/builds/rules/{rule_id}", update_rule, ["POST"]),
    page("/builds/rules/{rule_id}/delete", delete_rule, ["POST"]),
    page("/builds/rules/{rule_id}/run", run_rule, ["POST"]),
    page("/builds/{build_id}", build_page),
    page("/builds/{build_id}/cancel", cancel_build, ["POST"]),
]
