"""The `moorage` command: serve the registry, and operate a deployment."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Annotated, TypeVar

import typer
from sqlalchemy.engine import make_url

from moorage.content.archive import ImportResult
from moorage.errors import ConfigurationError, MoorageError, ResourceUnknownError
from moorage.log import configure_logging
from moorage.oci.reference import validate_repository_name, validate_tag
from moorage.services import Services, build_services
from moorage.settings import Settings, load_settings, misspelled_setting_variables

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
user_app = typer.Typer(no_args_is_help=True, help="Accounts: create, activate, reset passwords.")
namespace_app = typer.Typer(no_args_is_help=True, help="Namespaces: the first part of image names.")
quota_app = typer.Typer(no_args_is_help=True, help="Quotas: show, raise, verify.")
tag_app = typer.Typer(no_args_is_help=True, help="Tags: delete one.")
repository_app = typer.Typer(no_args_is_help=True, help="Repositories: delete one with all tags.")
deleted_app = typer.Typer(no_args_is_help=True, help="What was deleted and can be restored.")
app.add_typer(user_app, name="user")
app.add_typer(namespace_app, name="namespace")
app.add_typer(quota_app, name="quota")
app.add_typer(tag_app, name="tag")
app.add_typer(repository_app, name="repository")
app.add_typer(deleted_app, name="deleted")

Result = TypeVar("Result")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file; MOORAGE_* variables override it."),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where metadata and blobs live (MOORAGE_DATA_DIR)."),
]


def deployment_settings(
    config: Path | None, data_dir: Path | None, **overrides: object
) -> Settings:
    """The settings every command finds its deployment by, or a clean exit on bad ones."""
    for warning in misspelled_setting_variables(os.environ):
        typer.echo(f"moorage: warning: {warning}", err=True)
    try:
        return load_settings(config, data_dir=data_dir, **overrides)
    except ConfigurationError as exc:
        typer.echo(f"moorage: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def _group() -> None:
    """moorage: a self-hosted private container image registry."""


def run_with_services(
    config: Path | None, data_dir: Path | None, action: Callable[[Services], Awaitable[Result]]
) -> Result:
    """Run `action` against the deployment's services; a refusal exits 1 with its message."""
    settings = deployment_settings(config, data_dir)
    configure_logging("warning", "console")

    async def run() -> Result:
        services = build_services(settings)
        try:
            await services.start()
            return await action(services)
        finally:
            await services.close()

    try:
        return asyncio.run(run())
    except MoorageError as exc:
        typer.echo(f"moorage: {exc.message}", err=True)
        raise typer.Exit(1) from None


def read_secret(prompt: str) -> str:
    """A password from standard input when it is piped, else asked for twice without echo."""
    if not sys.stdin.isatty():
        line: str = sys.stdin.readline()
        return line.rstrip("\n")
    secret: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return secret


@app.command()
def serve(
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT to listen on (default 127.0.0.1:5000)."),
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate: serve HTTPS.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key.")] = None,
) -> None:
    """Run the registry."""
    # Imported here: the web stack is slow to load and only `serve` needs it.
    from moorage.app import create_app

    settings = deployment_settings(
        config, data_dir, listen=listen, tls_cert=tls_cert, tls_key=tls_key
    )
    configure_logging(settings.log_level, settings.log_format)
    # Migrate and load the keys before serving, so that a database that cannot be reached or
    # upgraded stops the server with its reason, not with a traceback from the lifespan.
    try:
        asyncio.run(_start_services(settings))
    except MoorageError as exc:
        typer.echo(f"moorage: {exc.message}", err=True)
        raise typer.Exit(1) from None
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )


async def _start_services(settings: Settings) -> None:
    services = build_services(settings)
    try:
        await services.start()
    finally:
        await services.close()


@app.command()
def migrate(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Bring the metadata database up to the newest schema."""

    async def database_url(services: Services) -> str:
        return services.settings.resolved_database_url

    database = make_url(run_with_services(config, data_dir, database_url))
    typer.echo(f"database {database.render_as_string(hide_password=True)} is up to date")


@user_app.command("create")
def user_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="May manage other accounts.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an account; its password is read from standard input or asked for."""
    password = read_secret("Account password")
    run_with_services(config, data_dir, lambda s: s.accounts.create(name, password, admin))
    typer.echo(f"account {name} created")


@user_app.command("activate")
def user_activate(name: str, data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Set (or reset) the registry password that `docker login` uses."""
    password = read_secret("Registry password")
    run_with_services(config, data_dir, lambda s: s.accounts.set_registry_password(name, password))
    typer.echo(f"registry activated for {name}")


@user_app.command("reset-password")
def user_reset_password(
    name: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Set a new account password (console and management API)."""
    password = read_secret("New account password")
    run_with_services(config, data_dir, lambda s: s.accounts.set_account_password(name, password))
    typer.echo(f"account password of {name} replaced")


@user_app.command("list")
def user_list(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """List accounts."""
    for user in run_with_services(config, data_dir, lambda s: s.accounts.list()):
        flags = ["admin"] if user.is_admin else []
        flags.append("activated" if user.is_activated else "not activated")
        typer.echo(f"{user.name}\t{', '.join(flags)}")


OwnerOption = Annotated[str, typer.Option("--owner", help="The account that owns it.")]


@namespace_app.command("create")
def namespace_create(
    name: str, owner: OwnerOption, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Create a namespace for an account."""
    run_with_services(config, data_dir, lambda s: s.namespaces.create(name, owner))
    typer.echo(f"namespace {name} created for {owner}")


@namespace_app.command("list")
def namespace_list(
    owner: OwnerOption, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """List an account's namespaces."""
    for namespace in run_with_services(config, data_dir, lambda s: s.namespaces.list_owned(owner)):
        typer.echo(f"{namespace.name}\t{namespace.repository_count} repositories")


@namespace_app.command("delete")
def namespace_delete(
    name: str, owner: OwnerOption, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Delete an empty namespace."""
    run_with_services(config, data_dir, lambda s: s.namespaces.delete(name, owner))
    typer.echo(f"namespace {name} deleted")


LimitOption = Annotated[int | None, typer.Option(min=0, max=1_000_000)]


@quota_app.command("set")
def quota_set(
    user: str,
    repositories: LimitOption = None,
    tags_per_repository: LimitOption = None,
    namespaces: LimitOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Override an account's limits; the change is recorded as made by the operator."""
    wanted: dict[str, int | None] = {
        name: value
        for name, value in [
            ("repositories", repositories),
            ("tags_per_repository", tags_per_repository),
            ("namespaces", namespaces),
        ]
        if value is not None
    }
    if not wanted:
        typer.echo(
            "moorage: give at least one of --repositories, --tags-per-repository, --namespaces",
            err=True,
        )
        raise typer.Exit(2)
    limits = run_with_services(
        config, data_dir, lambda s: s.quotas.set_limits(user, wanted, changed_by="operator")
    )
    typer.echo(f"{user}: {limits.describe()}")


@quota_app.command("show")
def quota_show(user: str, data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """An account's limits and usage."""
    usage = run_with_services(config, data_dir, lambda s: s.quotas.usage(user))
    limits = usage.limits
    typer.echo(f"repositories\t{usage.repositories}/{limits.repositories}")
    typer.echo(f"namespaces\t{usage.namespaces}/{limits.namespaces}")
    for repository, count in usage.tags.items():
        typer.echo(f"tags {repository}\t{count}/{limits.tags_per_repository}")


@quota_app.command("check")
def quota_check(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Recount usage from what is stored; exit 1 if anything disagrees or is over a limit."""
    problems = run_with_services(config, data_dir, lambda s: s.quotas.recount())
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo("quota usage is consistent")


OPERATOR = "operator"


@tag_app.command("delete")
def tag_delete(reference: str, data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Delete NAMESPACE/REPO:TAG; the image stays for its other tags."""
    repository, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        typer.echo("moorage: give the tag as NAMESPACE/REPO:TAG", err=True)
        raise typer.Exit(2)
    run_with_services(config, data_dir, lambda s: s.deletion.delete_tag(repository, tag, OPERATOR))
    typer.echo(f"deleted {reference}")


@repository_app.command("delete")
def repository_delete(
    repository: str,
    confirm: Annotated[str | None, typer.Option("--confirm", help="Repeat the name.")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete NAMESPACE/REPO and every tag in it (restorable for deleted_retention)."""
    run_with_services(
        config, data_dir, lambda s: s.deletion.delete_repository(repository, confirm, OPERATOR)
    )
    typer.echo(f"deleted {repository}")


@deleted_app.command("list")
def deleted_list(
    namespace: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """What was deleted in NAMESPACE and can still be restored."""
    for item in run_with_services(config, data_dir, lambda s: s.deletion.list_deleted(namespace)):
        name = f"{item.repository}:{item.tag}" if item.tag else item.repository
        until = item.restorable_until.isoformat(timespec="seconds")
        typer.echo(f"{item.id}\t{name}\t{item.digest or '-'}\trestorable until {until}")


@app.command()
def restore(reference: str, data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Restore a deleted NAMESPACE/REPO or NAMESPACE/REPO:TAG with its exact digests."""
    item = run_with_services(config, data_dir, lambda s: s.deletion.restore_reference(reference))
    typer.echo(f"restored {reference}" + (f" at {item.digest}" if item.digest else ""))


def split_reference(reference: str) -> tuple[str, str | None]:
    """`NAMESPACE/REPO[:TAG]` as the repository and the tag (None without one), validated."""
    repository, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return validate_repository_name(reference), None
    return validate_repository_name(repository), validate_tag(tag)


@app.command("export")
def export_archive(
    reference: str,
    output: Annotated[
        str, typer.Option("--output", "-o", help="The .tar file to write; - for standard output.")
    ],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Write NAMESPACE/REPO (every tag) or NAMESPACE/REPO:TAG as an OCI image layout archive."""

    async def write(services: Services) -> int:
        repository, tag = split_reference(reference)
        plan = await services.archives.plan_export(repository, tag)
        if output == "-":
            await _write_stream(services.archives.stream(plan), sys.stdout.buffer)
            return plan.length
        try:
            with Path(output).open("wb") as handle:
                await _write_stream(services.archives.stream(plan), handle)
        except BaseException:
            Path(output).unlink(missing_ok=True)
            raise
        return plan.length

    length = run_with_services(config, data_dir, write)
    if output != "-":
        typer.echo(f"exported {reference} to {output} ({length} bytes)")


async def _write_stream(chunks: AsyncIterator[bytes], handle: IO[bytes]) -> None:
    async for chunk in chunks:
        handle.write(chunk)


@app.command("import")
def import_archive(
    archive: Annotated[str, typer.Argument(help="The .tar file to read; - for standard input.")],
    repository: str,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Load an OCI image layout archive (moorage export, skopeo oci-archive) into NAMESPACE/REPO."""

    async def load(services: Services) -> ImportResult:
        if archive == "-":
            return await services.archives.import_archive(repository, sys.stdin.buffer)
        with Path(archive).open("rb") as handle:
            return await services.archives.import_archive(repository, handle)

    if archive != "-" and not Path(archive).is_file():
        typer.echo(f"moorage: {archive} is not a file", err=True)
        raise typer.Exit(2)
    result = run_with_services(config, data_dir, load)
    typer.echo(
        f"imported {', '.join(result.tags) or 'no tags'} into {result.repository}:"
        f" {result.manifests} manifests, {result.blobs} blobs ({result.blob_bytes} bytes)"
    )


build_app = typer.Typer(no_args_is_help=True, help="Image builds from git repositories.")
build_rule_app = typer.Typer(no_args_is_help=True, help="Build rules: what to build, from where.")
build_app.add_typer(build_rule_app, name="rule")
app.add_typer(build_app, name="build")


@build_rule_app.command("create")
def build_rule_create(
    repository: Annotated[str, typer.Argument(help="NAMESPACE/REPO to push the image to.")],
    git: Annotated[str, typer.Option("--git", help="The git repository's URL.")],
    ref: Annotated[str, typer.Option("--ref", help="Branch, tag, or a pattern such as v*.")],
    dockerfile: Annotated[str, typer.Option(help="Relative to the repository root.")] = (
        "Dockerfile"
    ),
    build_dir: Annotated[str, typer.Option(help="Relative to the repository root.")] = "./",
    tag: Annotated[
        str | None, typer.Option("--tag", help="Over {branch} {tag} {commit} {short_commit}.")
    ] = None,
    build_arg: Annotated[
        list[str] | None, typer.Option("--build-arg", help="KEY=VALUE; repeat for more.")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Git username; the token is read from standard input.")
    ] = None,
    ssh_key: Annotated[
        Path | None, typer.Option("--ssh-key", help="File holding an SSH private key.")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a build rule owned by the namespace's owner; prints the rule's id."""
    from moorage.builds.git import GitCredentials
    from moorage.builds.rule_store import RuleSpec
    from moorage.builds.rules import parse_build_arg

    credentials = None
    if username is not None:
        credentials = GitCredentials(username=username, token=read_secret("Git token"))
    elif ssh_key is not None:
        credentials = GitCredentials(ssh_key=ssh_key.read_text())

    async def create(services: Services) -> str:
        spec = RuleSpec(
            repository=repository,
            git_url=git,
            ref=ref,
            dockerfile=dockerfile,
            build_dir=build_dir,
            tag_template=tag,
            build_args=dict(parse_build_arg(item) for item in build_arg or []),
        )
        owner_id = await services.namespaces.owner_id(repository.split("/", 1)[0])
        if owner_id is None:
            raise ResourceUnknownError(f"no namespace for {repository!r}")
        return (await services.build_rules.create(owner_id, spec, credentials)).id

    typer.echo(run_with_services(config, data_dir, create))


@build_rule_app.command("show")
def build_rule_show(
    rule_id: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """A rule's fields, and the path and secret of its webhook."""
    from dataclasses import asdict

    async def show(services: Services) -> list[str]:
        rule = await services.build_rules.get(rule_id, None)
        secret = await services.build_rules.webhook_secret(rule.id)
        fields = [f"{name}\t{value}" for name, value in asdict(rule.spec).items()]
        return [
            f"id\t{rule.id}",
            f"owner\t{rule.owner}",
            *fields,
            f"webhook\t/api/v1/hooks/builds/{rule.id}",
            f"webhook_secret\t{secret}",
        ]

    for line in run_with_services(config, data_dir, show):
        typer.echo(line)


@build_app.command("run")
def build_run(
    rule_id: str,
    ref: Annotated[str | None, typer.Option("--ref", help="Another branch or tag.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the end; log to stderr.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Queue a build; prints its id, and with --wait its final state, exiting 1 unless it worked."""
    from moorage.builds.rules import validate_ref_pattern

    async def run(services: Services) -> str:
        rule = await services.build_rules.get(rule_id, None)
        wanted = validate_ref_pattern(ref) if ref else None
        build = await services.build_jobs.enqueue(rule, wanted, "manual")
        typer.echo(build.id)
        if not wait:
            return build.state
        await _print_log(services, build.id, err=True)
        return (await services.build_jobs.get(build.id)).state

    state = run_with_services(config, data_dir, run)
    if wait:
        typer.echo(state)
        if state != "succeeded":
            raise typer.Exit(1)


@build_app.command("logs")
def build_logs(
    build_id: str,
    follow: Annotated[bool, typer.Option("--follow", help="Wait for new lines.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """A build's log, one timestamped line each."""

    async def show(services: Services) -> None:
        await services.build_jobs.get(build_id)
        if follow:
            await _print_log(services, build_id, err=False)
            return
        for line in await services.build_logs.read(build_id):
            typer.echo(f"{line.at.isoformat()} {line.line}")

    run_with_services(config, data_dir, show)


async def _print_log(services: Services, build_id: str, err: bool) -> None:
    async def finished() -> bool:
        return (await services.build_jobs.get(build_id)).finished

    async for line in services.build_logs.follow(build_id, finished):
        typer.echo(f"{line.at.isoformat()} {line.line}", err=err)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Builds at once (builds.max_concurrent).")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Run a build worker beside the server, until interrupted."""
    import signal

    from moorage.builds.worker import create_worker

    settings = deployment_settings(config, data_dir)
    if concurrency is not None:
        settings.builds.max_concurrent = concurrency
    configure_logging(settings.log_level, settings.log_format)

    async def run() -> None:
        services = build_services(settings)
        await services.start()
        task = asyncio.create_task(create_worker(services).run_forever())
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            await services.close()

    asyncio.run(run())


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print what would be removed.")
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove blobs and manifests nothing references, while the registry keeps serving."""
    report = run_with_services(config, data_dir, lambda s: s.gc.run(dry_run=dry_run))
    verb = "would remove" if dry_run else "removed"
    for manifest in report.manifests:
        typer.echo(f"{verb} manifest {manifest.repository}@{manifest.digest}")
    for link in report.links:
        typer.echo(f"{verb} link {link.repository} {link.digest}")
    for blob in report.blobs:
        typer.echo(f"{verb} blob {blob.digest} ({blob.size} bytes)")
    for blob in report.orphan_files:
        typer.echo(f"{verb} orphan file {blob.digest} ({blob.size} bytes)")
    for upload in report.stray_uploads:
        typer.echo(f"{verb} stray upload {upload.upload_id} ({upload.size} bytes)")
    if report.purged:
        typer.echo(f"{verb} {report.purged} deleted items past their restore window")
    if report.spared:
        typer.echo(f"spared {report.spared} items that a concurrent push made used again")
    reclaimed = "would be reclaimed" if dry_run else "reclaimed"
    typer.echo(f"{report.blob_count} blobs, {report.bytes_reclaimed} bytes {reclaimed}")


@app.command()
def fsck(
    sample: Annotated[
        int | None, typer.Option("--sample", min=0, help="Re-hash only this many random blobs.")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Check stored blobs against their digests and the metadata; exit 1 if any is unsound."""
    report = run_with_services(config, data_dir, lambda s: s.fsck.check(sample))
    for finding in report.problems:
        typer.echo(f"{finding.kind}\t{finding.subject}\t{finding.detail}")
    for finding in report.garbage:
        typer.echo(f"garbage {finding.kind}\t{finding.subject}\t{finding.detail}")
    typer.echo(
        f"checked {report.blobs_checked} blobs, re-hashed {report.blobs_hashed}:"
        f" {len(report.problems)} problems, {len(report.garbage)} garbage for gc"
    )
    if not report.sound:
        typer.echo("the store is not sound")
        raise typer.Exit(1)
    typer.echo("the store is sound")


def main() -> None:
    """Entry point of the `moorage` console script."""
    app()
