"""Settings: defaults, config file, MOORAGE_* variables, flags, and clear refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from moorage.errors import ConfigurationError
from moorage.settings import load_settings


@pytest.fixture(autouse=True)
def no_moorage_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test sees only the variables it sets, and relative paths land in tmp_path."""
    for name in list(os.environ):
        if name.startswith("MOORAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "moorage.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()

    assert settings.listen == "127.0.0.1:5000"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 5000)
    assert settings.data_dir == Path("data")
    assert settings.storage.driver == "filesystem"
    assert settings.blob_path == Path("data/blobs")
    assert settings.resolved_database_url == (
        f"sqlite+aiosqlite:///{(Path('data') / 'moorage.db').resolve()}"
    )
    assert settings.upload_expiry_seconds == 86400
    assert (settings.log_level, settings.log_format) == ("info", "json")


def test_config_file(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        'listen = "0.0.0.0:6000"\n'
        'data_dir = "/srv/moorage"\n'
        "upload_expiry_seconds = 600\n"
        'log_format = "console"\n'
        "[storage]\n"
        'driver = "memory"\n'
        'path = "/srv/blobs"\n',
    )

    settings = load_settings(path)

    assert settings.listen == "0.0.0.0:6000"
    assert settings.data_dir == Path("/srv/moorage")
    assert settings.upload_expiry_seconds == 600
    assert settings.log_format == "console"
    assert settings.storage.driver == "memory"
    assert settings.blob_path == Path("/srv/blobs")


def test_variables_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file(
        tmp_path,
        'listen = "0.0.0.0:6000"\nlog_level = "warning"\n[storage]\npath = "/srv/blobs"\n',
    )
    monkeypatch.setenv("MOORAGE_LISTEN", "127.0.0.1:7000")
    monkeypatch.setenv("MOORAGE_STORAGE__DRIVER", "memory")

    settings = load_settings(path)

    assert settings.listen == "127.0.0.1:7000"
    assert settings.log_level == "warning"
    assert settings.storage.driver == "memory"
    assert settings.storage.path == Path("/srv/blobs")


def test_flags_win_over_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file(tmp_path, 'listen = "0.0.0.0:6000"\ndata_dir = "/from/file"\n')
    monkeypatch.setenv("MOORAGE_LISTEN", "127.0.0.1:7000")
    monkeypatch.setenv("MOORAGE_DATA_DIR", str(tmp_path / "from-variable"))

    settings = load_settings(path, listen="127.0.0.1:8000", data_dir=None)

    assert settings.listen == "127.0.0.1:8000"
    assert settings.data_dir == tmp_path / "from-variable"


def test_ipv6_listen_address() -> None:
    settings = load_settings(listen="[::1]:5000")

    assert (settings.listen_host, settings.listen_port) == ("::1", 5000)


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:////srv/moorage.db", "postgresql+psycopg://postgres@/moorage?host=/run"],
)
def test_an_explicit_database_url_is_kept(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    pytest.importorskip(url.split("+")[1].split(":")[0])
    monkeypatch.setenv("MOORAGE_DATABASE_URL", url)

    assert load_settings().resolved_database_url == url


@pytest.mark.parametrize(
    ("value", "retention"),
    [
        ("0", timedelta(0)),
        ("3600", timedelta(hours=1)),
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("P2D", timedelta(days=2)),
    ],
)
def test_the_deleted_retention_is_read_as_a_duration(
    monkeypatch: pytest.MonkeyPatch, value: str, retention: timedelta
) -> None:
    monkeypatch.setenv("MOORAGE_DELETED_RETENTION", value)

    assert load_settings().deleted_retention == retention


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("MOORAGE_LISTEN", "nonsense", "listen"),
        ("MOORAGE_LISTEN", "127.0.0.1:70000", "listen"),
        ("MOORAGE_LISTEN", ":5000", "listen"),
        ("MOORAGE_UPLOAD_EXPIRY_SECONDS", "soon", "upload_expiry_seconds"),
        ("MOORAGE_UPLOAD_EXPIRY_SECONDS", "10", "upload_expiry_seconds"),
        ("MOORAGE_STORAGE__DRIVER", "gcs", "storage.driver"),
        ("MOORAGE_LOG_LEVEL", "loud", "log_level"),
        ("MOORAGE_LOG_FORMAT", "xml", "log_format"),
        ("MOORAGE_PUBLIC_URL", "ftp://registry", "public_url"),
        ("MOORAGE_DATABASE_URL", "nonsense", "database_url"),
        ("MOORAGE_DATABASE_URL", "nosuchdb://host/db", "database_url"),
        ("MOORAGE_DATABASE_URL", "sqlite:///sync.db", "database_url"),
        ("MOORAGE_DELETED_RETENTION", "a week", "deleted_retention"),
        ("MOORAGE_DELETED_RETENTION", "-1", "deleted_retention"),
        ("MOORAGE_DELETED_RETENTION", "-P1D", "deleted_retention"),
    ],
)
def test_a_bad_variable_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as refused:
        load_settings()

    assert refused.value.message.startswith("invalid settings: ")
    assert f"{named}: " in refused.value.message


def test_a_database_password_is_not_repeated_in_the_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOORAGE_DATABASE_URL", "nosuchdb://moorage:hunter2@db/moorage")

    with pytest.raises(ConfigurationError) as refused:
        load_settings()

    assert "hunter2" not in refused.value.message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('listn = "127.0.0.1:5000"\n', "listn"),
        ('[storage]\ndriver = "tape"\n', "storage.driver"),
        ("upload_expiry_seconds = -5\n", "upload_expiry_seconds"),
        ('tls_cert = "/no/such/cert.pem"\n', "tls_cert and tls_key"),
    ],
)
def test_a_bad_file_value_is_refused_by_name(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(config_file(tmp_path, text))

    assert named in refused.value.message


def test_a_malformed_config_file_is_refused(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'listen = "127.0.0.1:5000"\n[storage\n')

    with pytest.raises(ConfigurationError) as refused:
        load_settings(path)

    assert str(path) in refused.value.message
    assert "TOML" in refused.value.message


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("not a folder")

    for data_dir in (tmp_path / "occupied", tmp_path / "occupied" / "below"):
        with pytest.raises(ConfigurationError, match="data_dir: "):
            load_settings(data_dir=data_dir)


def serve(tmp_path: Path, *args: str, **variables: str) -> subprocess.Popen[str]:
    """Start `moorage serve`, which these tests expect to stop at once."""
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MOORAGE_")},
        **variables,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "moorage", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=tmp_path,
    )


BAD_STARTS: list[tuple[list[str], dict[str, str], str]] = [
    (["--listen", "bogus"], {}, "listen"),
    ([], {"MOORAGE_STORAGE__DRIVER": "gcs"}, "storage.driver"),
    ([], {"MOORAGE_DATABASE_URL": "nonsense"}, "database_url"),
    (["--data-dir", "occupied"], {}, "data_dir"),
    (["--config", "broken.toml"], {}, "broken.toml"),
    (["--config", "missing.toml"], {}, "missing.toml"),
]


def test_serve_with_a_bad_value_exits_with_a_readable_message(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("not a folder")
    (tmp_path / "broken.toml").write_text("[storage\n")

    # Started together: each one is mostly the interpreter loading moorage.
    started = [(case, serve(tmp_path, *case[0], **case[1])) for case in BAD_STARTS]

    for (args, variables, named), process in started:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode != 0, (args, variables)
        assert stderr.startswith("moorage: "), (args, variables, stderr)
        assert named in stderr, (args, variables, stderr)
        assert "Traceback" not in stderr + stdout, (args, variables)


def test_serve_on_a_busy_port_exits_with_a_readable_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"

        process = serve(tmp_path, "--listen", address, "--data-dir", "data")
        stdout, stderr = process.communicate(timeout=60)

    assert process.returncode != 0
    assert "address already in use" in stderr
    assert "Traceback" not in stderr + stdout


def test_s3_storage_from_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_STORAGE__DRIVER", "s3")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__BUCKET", "images")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__PREFIX", "registry")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__SECRET_ACCESS_KEY", "s3cr3t-value")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__REDIRECT", "true")

    s3 = load_settings().storage.s3

    assert s3 is not None
    assert (s3.bucket, s3.endpoint_url, s3.prefix) == (
        "images",
        "http://127.0.0.1:9000",
        "registry/",
    )
    assert (s3.region, s3.addressing_style, s3.redirect_expiry_seconds) == (
        "us-east-1",
        "auto",
        900,
    )
    assert s3.redirect
    assert "s3cr3t-value" not in repr(s3)


def test_empty_s3_key_variables_leave_credentials_to_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_STORAGE__DRIVER", "s3")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__BUCKET", "images")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__ACCESS_KEY_ID", "")
    monkeypatch.setenv("MOORAGE_STORAGE__S3__SECRET_ACCESS_KEY", "")

    s3 = load_settings().storage.s3

    assert s3 is not None
    assert (s3.access_key_id, s3.secret_access_key) == (None, None)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[storage]\ndriver = "s3"\n', "storage.s3.bucket"),
        ('[storage]\ndriver = "s3"\n[storage.s3]\nbucket = "b"\naccess_key_id = "k"\n', "together"),
        (
            '[storage]\ndriver = "s3"\n[storage.s3]\nbucket = "b"\naccess_key_id = "k"\n'
            'secret_access_key = ""\n',
            "together",
        ),
        (
            '[storage]\ndriver = "s3"\n[storage.s3]\nbucket = "b"\nredirect_expiry_seconds = 5\n',
            "storage.s3.redirect_expiry_seconds",
        ),
        ('[storage.s3]\nbucket = "b"\nendpoint_url = "minio:9000"\n', "endpoint_url"),
    ],
)
def test_bad_s3_settings_are_refused_by_name(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(config_file(tmp_path, text))

    assert named in refused.value.message
