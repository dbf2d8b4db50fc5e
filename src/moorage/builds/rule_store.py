"""Build rules as stored: created, changed and deleted by the owner of the target repository."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.engine import Row

from moorage.accounts.namespaces import NamespaceService
from moorage.builds.git import GitCredentials
from moorage.builds.rules import (
    DEFAULT_BUILD_DIR,
    DEFAULT_DOCKERFILE,
    check_relative_path,
    validate_build_args,
    validate_git_url,
    validate_ref_pattern,
    validate_tag_template,
)
from moorage.builds.secrets import SecretBox
from moorage.clock import utc_now
from moorage.errors import FieldInvalidError, NameInvalidError, ResourceUnknownError
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import build_rules, users
from moorage.oci.reference import validate_repository_name

log = get_logger(__name__)

SSH_KEY_MAX = 16384
CREDENTIAL_MAX = 4096


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a rule says, before it is checked and stored."""

    repository: str
    git_url: str
    ref: str
    dockerfile: str = DEFAULT_DOCKERFILE
    build_dir: str = DEFAULT_BUILD_DIR
    tag_template: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)

    def validated(self, allow_file_urls: bool) -> RuleSpec:
        """The spec normalized, or `FieldInvalidError` naming the first wrong field."""
        try:
            repository = validate_repository_name(self.repository.strip())
        except NameInvalidError as exc:
            raise FieldInvalidError("repository", exc.message) from None
        if "/" not in repository:
            raise FieldInvalidError("repository", "repository must be NAMESPACE/NAME")
        return RuleSpec(
            repository=repository,
            git_url=validate_git_url(self.git_url, allow_file_urls),
            ref=validate_ref_pattern(self.ref),
            dockerfile=check_relative_path("dockerfile", self.dockerfile, directory=False),
            build_dir=check_relative_path("build_dir", self.build_dir, directory=True),
            tag_template=validate_tag_template(self.tag_template),
            build_args=validate_build_args(self.build_args),
        )


@dataclass(frozen=True, slots=True)
class BuildRule:
    """A stored rule, without its secrets."""

    id: str
    user_id: int
    owner: str
    spec: RuleSpec
    has_credentials: bool
    created_at: datetime
    updated_at: datetime


def validate_credentials(credentials: GitCredentials | None) -> GitCredentials | None:
    """Credentials, if they are one kind: a username and token, or an SSH private key."""
    if credentials is None or not (credentials.token or credentials.ssh_key):
        if credentials is not None and credentials.username:
            raise FieldInvalidError("credentials", "a username needs a token")
        return None
    if credentials.token and credentials.ssh_key:
        raise FieldInvalidError("credentials", "give a username and token, or an SSH key")
    if credentials.ssh_key:
        key = credentials.ssh_key.strip()
        if len(key) > SSH_KEY_MAX or not key.startswith("-----BEGIN"):
            raise FieldInvalidError("credentials", "ssh_key must be a PEM or OpenSSH private key")
        return GitCredentials(ssh_key=key)
    token = credentials.token or ""
    username = credentials.username or "git"
    if len(token) > CREDENTIAL_MAX or len(username) > 255 or "\n" in token + username:
        raise FieldInvalidError("credentials", "the username or token is malformed")
    return GitCredentials(username=username, token=token)


def _with_owner() -> Select[tuple[object, ...]]:
    return select(build_rules, users.c.name.label("owner")).join(
        users, users.c.id == build_rules.c.user_id
    )


def _rule(row: Row[tuple[object, ...]]) -> BuildRule:
    spec = RuleSpec(
        repository=row.repository,
        git_url=row.git_url,
        ref=row.ref,
        dockerfile=row.dockerfile,
        build_dir=row.build_dir,
        tag_template=row.tag_template,
        build_args=json.loads(row.build_args),
    )
    return BuildRule(
        row.id,
        row.user_id,
        row.owner,
        spec,
        row.credentials is not None,
        row.created_at,
        row.updated_at,
    )


class BuildRuleService:
    """Creates, reads, changes and deletes build rules; keeps their secrets encrypted."""

    def __init__(
        self,
        database: Database,
        namespaces: NamespaceService,
        box: SecretBox,
        allow_file_urls: bool,
    ) -> None:
        self._database = database
        self._namespaces = namespaces
        self._box = box
        self._allow_file_urls = allow_file_urls

    async def create(
        self, user_id: int, spec: RuleSpec, credentials: GitCredentials | None
    ) -> BuildRule:
        """A new rule of `user_id`, whose namespace must be theirs."""
        spec = spec.validated(self._allow_file_urls)
        credentials = validate_credentials(credentials)
        await self._check_owner(user_id, spec.repository)
        now = utc_now()
        rule_id = uuid.uuid4().hex
        async with self._database.writing() as connection:
            await connection.execute(
                build_rules.insert().values(
                    id=rule_id,
                    user_id=user_id,
                    **self._columns(spec),
                    credentials=self._seal_credentials(credentials),
                    webhook_secret=self._box.seal(secrets.token_urlsafe(32)),
                    created_at=now,
                    updated_at=now,
                )
            )
        log.info("build rule created", rule_id=rule_id, repository=spec.repository)
        return await self.get(rule_id, user_id)

    async def get(self, rule_id: str, user_id: int | None) -> BuildRule:
        """Rule `rule_id`, if `user_id` owns it (any owner when None); unknown otherwise."""
        query = _with_owner().where(build_rules.c.id == rule_id[:64])
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            raise ResourceUnknownError(f"no build rule {rule_id[:64]}")
        return _rule(row)

    async def list_owned(self, user_id: int) -> list[BuildRule]:
        """The rules of `user_id`, oldest first."""
        query = (
            _with_owner()
            .where(build_rules.c.user_id == user_id)
            .order_by(build_rules.c.created_at, build_rules.c.id)
        )
        async with self._database.reading() as connection:
            return [_rule(row) for row in await connection.execute(query)]

    async def update(
        self,
        rule_id: str,
        user_id: int,
        changes: dict[str, object],
        credentials: GitCredentials | None = None,
        replace_credentials: bool = False,
    ) -> BuildRule:
        """Change some fields of a rule; the credentials only when `replace_credentials`."""
        current = await self.get(rule_id, user_id)
        spec = replace(current.spec, **changes).validated(self._allow_file_urls)  # type: ignore[arg-type]
        await self._check_owner(user_id, spec.repository)
        values: dict[str, object] = {**self._columns(spec), "updated_at": utc_now()}
        if replace_credentials:
            values["credentials"] = self._seal_credentials(validate_credentials(credentials))
        async with self._database.writing() as connection:
            await connection.execute(
                build_rules.update().where(build_rules.c.id == rule_id).values(**values)
            )
        log.info("build rule changed", rule_id=rule_id, repository=spec.repository)
        return await self.get(rule_id, user_id)

    async def delete(self, rule_id: str, user_id: int) -> None:
        """Delete a rule with its build history."""
        await self.get(rule_id, user_id)
        async with self._database.writing() as connection:
            await connection.execute(build_rules.delete().where(build_rules.c.id == rule_id))
        log.info("build rule deleted", rule_id=rule_id)

    async def credentials(self, rule_id: str) -> GitCredentials | None:
        """The rule's git credentials, decrypted, for the worker that clones."""
        sealed = await self._secret_column(rule_id, "credentials")
        if sealed is None:
            return None
        return GitCredentials(**json.loads(self._box.open(sealed)))

    async def webhook_secret(self, rule_id: str) -> str:
        """The secret webhooks of the rule are signed with."""
        sealed = await self._secret_column(rule_id, "webhook_secret")
        if sealed is None:
            raise ResourceUnknownError(f"no build rule {rule_id[:64]}")
        return self._box.open(sealed)

    async def _secret_column(self, rule_id: str, column: str) -> bytes | None:
        query = select(build_rules.c[column]).where(build_rules.c.id == rule_id[:64])
        async with self._database.reading() as connection:
            value: bytes | None = (await connection.execute(query)).scalar_one_or_none()
        return value

    async def _check_owner(self, user_id: int, repository: str) -> None:
        namespace = repository.split("/", 1)[0]
        if await self._namespaces.owner_id(namespace) != user_id:
            raise ResourceUnknownError(f"you have no namespace named {namespace!r}")

    def _seal_credentials(self, credentials: GitCredentials | None) -> bytes | None:
        if credentials is None:
            return None
        fields = {
            name: value
            for name, value in (
                ("username", credentials.username),
                ("token", credentials.token),
                ("ssh_key", credentials.ssh_key),
            )
            if value
        }
        return self._box.seal(json.dumps(fields))

    @staticmethod
    def _columns(spec: RuleSpec) -> dict[str, object]:
        return {
            "repository": spec.repository,
            "git_url": spec.git_url,
            "ref": spec.ref,
            "dockerfile": spec.dockerfile,
            "build_dir": spec.build_dir,
            "tag_template": spec.tag_template,
            "build_args": json.dumps(spec.build_args, sort_keys=True),
        }
