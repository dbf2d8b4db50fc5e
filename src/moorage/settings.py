"""Typed settings: defaults, then a TOML config file, then MOORAGE_* variables, then CLI flags."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import create_async_engine

from moorage.accounts.rules import validate_password, validate_user_name
from moorage.errors import ConfigurationError, FieldInvalidError

# Durations as an operator writes them: 0, 3600 (seconds), 90s, 30m, 12h, 7d.
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class S3Settings(BaseModel):
    """An S3 bucket (AWS, MinIO, Ceph, ...) that holds the blobs; it must exist already."""

    bucket: str = Field(min_length=1)
    # None means AWS itself; set for any other S3-compatible service.
    endpoint_url: str | None = None
    region: str = "us-east-1"
    # None for both uses boto3's own chain: environment, shared files, instance roles.
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    # Every key starts with it; a prefix without a final "/" gets one.
    prefix: str = ""
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Blob GETs answer 307 with a presigned URL of the bucket, so bytes bypass moorage.
    redirect: bool = False
    redirect_expiry_seconds: int = Field(default=900, ge=60, le=604800)

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url must start with http:// or https://, got {value!r}")
        return value

    @field_validator("access_key_id", "secret_access_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        # An empty variable (`MOORAGE_STORAGE__S3__SECRET_ACCESS_KEY=`) means not given, as boto3
        # reads it: otherwise a key id without its secret passes here and fails inside boto3.
        return None if value == "" else value

    @field_validator("prefix")
    @classmethod
    def _normalize_prefix(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else f"{value}/"

    @model_validator(mode="after")
    def _check_key_pair(self) -> S3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be given together")
        return self


class StorageSettings(BaseModel):
    """Where blobs are kept."""

    driver: Literal["filesystem", "memory", "s3"] = "filesystem"
    # Defaults to `<data_dir>/blobs` for the filesystem driver.
    path: Path | None = None
    # Required by the s3 driver, ignored by the others.
    s3: S3Settings | None = None

    @model_validator(mode="after")
    def _check_s3(self) -> StorageSettings:
        if self.driver == "s3" and self.s3 is None:
            raise ValueError(
                "the s3 driver needs storage.s3 settings, at least storage.s3.bucket"
                " (MOORAGE_STORAGE__S3__BUCKET)"
            )
        return self


class AuthSettings(BaseModel):
    """Accounts and token authentication."""

    # The `service` of the token auth spec: the audience of every token.
    service: str = "moorage"
    issuer: str = "moorage"
    token_lifetime_seconds: int = Field(default=300, ge=60, le=3600)
    allow_signup: bool = False
    # Failed logins allowed per account, and per client address, in each window.
    login_failures_per_window: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)


class QuotaSettings(BaseModel):
    """Default limits of every account; an operator can raise them per account."""

    repositories_per_user: int = Field(default=500, ge=0, le=1_000_000)
    tags_per_repository: int = Field(default=100, ge=0, le=1_000_000)
    namespaces_per_user: int = Field(default=10, ge=0, le=1_000_000)


class BuildSettings(BaseModel):
    """Image builds from source: which engine runs them, how many, for how long."""

    # file:// repositories read the build host's disk: only for operators who want that.
    allow_file_urls: bool = False
    engine: Literal["buildah", "podman", "docker"] = "buildah"
    timeout_seconds: int = Field(default=1800, ge=1, le=24 * 3600)
    # Builds one worker runs at the same time.
    max_concurrent: int = Field(default=1, ge=1, le=64)
    # `moorage serve` runs one worker itself; `moorage worker` runs more beside it.
    in_process_worker: bool = True
    # Clones, contexts and image storage of running builds; defaults to `<data_dir>/builds`.
    work_dir: Path | None = None
    # How often a worker looks for queued builds, and proves it is alive.
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    # A running build whose worker has been silent this long is marked failed.
    heartbeat_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


class Settings(BaseSettings):
    """Every setting of one moorage deployment."""

    model_config = SettingsConfigDict(
        env_prefix="MOORAGE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    listen: str = "127.0.0.1:5000"
    data_dir: Path = Path("./data")
    # SQLAlchemy URL of the metadata database; defaults to SQLite under the data dir.
    database_url: str | None = None
    # The address clients use to reach the registry, for Location headers and the token realm.
    public_url: str | None = None
    storage: StorageSettings = Field(default_factory=StorageSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    builds: BuildSettings = Field(default_factory=BuildSettings)
    # The first admin, created on a start with an empty database.
    admin_user: str | None = None
    admin_password: SecretStr | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=60)
    # How long deleted tags and repositories stay restorable; 0 deletes at once.
    deleted_retention: timedelta = Field(default=timedelta(days=7), ge=timedelta(0))
    # How long garbage collection spares an unreferenced upload, blob link or untagged
    # manifest: a push in progress has its blobs before its manifest arrives.
    gc_grace_period: timedelta = Field(default=timedelta(hours=1), ge=timedelta(0))
    # How often the server collects garbage itself; 0 leaves it to `moorage gc`.
    gc_interval: timedelta = Field(default=timedelta(hours=1), ge=timedelta(0))
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen must be HOST:PORT, got {value!r}")
        return value

    @field_validator("deleted_retention", "gc_grace_period", "gc_interval", mode="before")
    @classmethod
    def _read_duration(cls, value: object) -> object:
        # A variable is always text, which pydantic reads only as ISO 8601 ("P7D") or HH:MM:SS.
        if isinstance(value, str) and not value.startswith("P"):
            found = _DURATION.fullmatch(value.strip())
            if not found:
                raise ValueError(
                    f"expected a duration such as 0, 3600 (seconds), 30m, 12h, 7d or P7D;"
                    f" got {value[:40]!r}"
                )
            return timedelta(seconds=int(found[1]) * _DURATION_UNITS[found[2] or "s"])
        return value

    @field_validator("data_dir")
    @classmethod
    def _check_data_dir(cls, value: Path) -> Path:
        folder = value.absolute()
        existing = next(path for path in (folder, *folder.parents) if path.exists())
        if not existing.is_dir():
            raise ValueError(f"data_dir {str(value)!r} cannot be a folder: {existing} is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"data_dir {str(value)!r} cannot be written: {existing} is read-only")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        # The URL may hold a password, so the messages never repeat it.
        if value is None:
            return value
        try:
            # Builds the engine as the app will, without connecting: URL, dialect and driver.
            create_async_engine(value)
        except (ArgumentError, NoSuchModuleError):
            raise ValueError("database_url is not a database URL that SQLAlchemy knows") from None
        except ImportError as exc:
            raise ValueError(
                f"database_url needs a driver that is not installed: {exc.name}"
            ) from None
        except InvalidRequestError:
            raise ValueError(
                "database_url must name an async driver,"
                " such as sqlite+aiosqlite:// or postgresql+psycopg://"
            ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"public_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("admin_user")
    @classmethod
    def _check_admin_user(cls, value: str | None) -> str | None:
        # Checked here, or a bad first admin stops the server halfway through its start.
        # An empty variable (`MOORAGE_ADMIN_USER=`) means no first admin, as if unset.
        try:
            return validate_user_name(value) if value else None
        except FieldInvalidError as exc:
            raise ValueError(exc.message) from None

    @field_validator("admin_password")
    @classmethod
    def _check_admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            validate_password(value.get_secret_value())
        except FieldInvalidError as exc:
            raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _check_admin_pair(self) -> Settings:
        if (self.admin_user is None) != (self.admin_password is None):
            raise ValueError("admin_user and admin_password must be given together")
        return self

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @property
    def build_work_dir(self) -> Path:
        """Where workers keep the clones, contexts and image storage of running builds."""
        return self.builds.work_dir or self.data_dir / "builds"

    @property
    def registry_url(self) -> str:
        """The registry's own address, as a build worker on this host pushes to it."""
        if self.public_url:
            return self.public_url
        host = self.listen_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.listen_port}"

    @property
    def listen_host(self) -> str:
        """The host part of `listen`, without IPv6 brackets."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """The port part of `listen`."""
        return int(self.listen.rpartition(":")[2])

    @property
    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL of the metadata database."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'moorage.db').resolve()}"

    @property
    def blob_path(self) -> Path:
        """Where the filesystem driver keeps blobs and uploads."""
        return self.storage.path or self.data_dir / "blobs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A config file is given by subclassing with `toml_file` set; see `load_settings`.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, raising `ConfigurationError` with a readable message on a bad value."""
    if config_file is not None and not config_file.is_file():
        raise ConfigurationError(f"config file {config_file} does not exist")
    explicit = {key: value for key, value in overrides.items() if value is not None}
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        file_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})
        settings_cls = type("FileSettings", (Settings,), {"model_config": file_config})
    try:
        return settings_cls(**explicit)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"config file {config_file} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"config file {config_file} cannot be read: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def setting_variables(model: type[BaseModel] = Settings, prefix: str = "MOORAGE_") -> set[str]:
    """Every `MOORAGE_*` variable a setting reads, nested ones included."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        names.add(variable)
        nested = [
            kind
            for kind in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(kind, type) and issubclass(kind, BaseModel)
        ]
        for kind in nested:
            names |= setting_variables(kind, f"{variable}__")
    return names


def misspelled_setting_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for `MOORAGE_*` variables that no setting reads but look meant for one.

    A nested name (with `__`) that is not a setting is surely a mistake; a plain one only when
    it is close to a setting's name, since other tools may use the prefix too.
    """
    known = setting_variables()
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith("MOORAGE_") or variable in known:
            continue
        close = difflib.get_close_matches(variable, known, n=1, cutoff=0.85)
        if "__" not in variable and not close:
            continue
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{variable} is not a setting and is ignored{hint}")
    return warnings
