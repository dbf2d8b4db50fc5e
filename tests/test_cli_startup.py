"""What the commands say at start: misspelled variables, the database they use, one down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import RunningServer
from tests.ports import free_port

from moorage.settings import misspelled_setting_variables, setting_variables

UNREACHABLE_DATABASE = f"postgresql+psycopg://moorage:hunter2@127.0.0.1:{free_port()}/moorage"


def moorage(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moorage", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_every_nested_setting_has_its_variable() -> None:
    names = setting_variables()

    assert {"MOORAGE_LISTEN", "MOORAGE_STORAGE__S3__BUCKET", "MOORAGE_AUTH__ISSUER"} <= names
    assert "MOORAGE_BUILDS__HEARTBEAT_TIMEOUT_SECONDS" in names


def test_misspelled_variables_are_named_with_the_setting_they_resemble() -> None:
    warnings = misspelled_setting_variables(
        {
            "MOORAGE_LISTN": "127.0.0.1:5000",
            "MOORAGE_STORAGE__S3__BUKET": "images",
            "MOORAGE_STORAGE__NOTHING_LIKE_IT": "x",
            "MOORAGE_LISTEN": "127.0.0.1:5000",
            "MOORAGE_TEST_DATABASE": "postgresql",
            "PATH": "/usr/bin",
        }
    )

    assert warnings == [
        "MOORAGE_LISTN is not a setting and is ignored; did you mean MOORAGE_LISTEN?",
        "MOORAGE_STORAGE__NOTHING_LIKE_IT is not a setting and is ignored",
        "MOORAGE_STORAGE__S3__BUKET is not a setting and is ignored;"
        " did you mean MOORAGE_STORAGE__S3__BUCKET?",
    ]


def test_migrate_names_the_database_it_upgraded_and_warns_of_a_misspelling(
    tmp_path: Path,
) -> None:
    server = RunningServer(tmp_path / "data")

    migrated = moorage(
        "migrate",
        "--data-dir",
        str(server.data_dir),
        env={**server.environment, "MOORAGE_GC_INTERVALL": "1h"},
    )

    assert migrated.returncode == 0, migrated.stderr
    database = server.settings().resolved_database_url
    if "@" in database:  # PostgreSQL: the URL is shown, never a password in it
        assert migrated.stdout.startswith("database postgresql+psycopg://")
    else:
        assert migrated.stdout == f"database {database} is up to date\n"
    assert "MOORAGE_GC_INTERVALL is not a setting and is ignored; did you mean" in migrated.stderr


def test_serve_and_migrate_stop_with_the_reason_when_the_database_is_down(
    tmp_path: Path,
) -> None:
    env = {**RunningServer(tmp_path / "data").environment}
    env["MOORAGE_DATABASE_URL"] = UNREACHABLE_DATABASE
    listen = f"127.0.0.1:{free_port()}"

    for arguments in (["serve", "--listen", listen], ["migrate"]):
        result = moorage(*arguments, "--data-dir", str(tmp_path / "data"), env=env)

        assert result.returncode == 1, result.stderr
        assert "moorage: the metadata database is unavailable" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert "hunter2" not in result.stderr + result.stdout
