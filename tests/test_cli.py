"""The `moorage user` and `moorage namespace` commands against the shared server's data dir.

Most commands run in this process through typer's runner, which is quick; a few run as the
real `python -m moorage` process, to prove the entry point, stdin and exit statuses.
Passwords always come on standard input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import structlog
from tests.account_support import API, unique_name
from typer.testing import CliRunner, Result

from moorage.cli import app
from moorage.errors import ConfigurationError
from moorage.settings import load_settings

if TYPE_CHECKING:
    from tests.conftest import RunningServer

Moorage = Callable[..., Result]


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """In-process commands point the log at a stream that then closes: put it back after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def moorage(server: RunningServer) -> Moorage:
    """`moorage ARGS --data-dir <the shared server's>`, in this process; stdin from `input`."""
    runner = CliRunner()
    environment = {
        key: value for key, value in server.environment.items() if key.startswith("MOORAGE_")
    }

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            app, [*args, "--data-dir", str(server.data_dir)], input=input, env=environment
        )

    return invoke


def assert_refused(result: Result, says: str, exit_code: int = 1) -> None:
    """A clean refusal: the exit status, a message on stderr, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert says in result.stderr
    assert result.stderr.startswith("moorage: ") or exit_code == 2
    assert "Traceback" not in result.output + result.stderr
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_user_from_creation_to_login(server: RunningServer, moorage: Moorage) -> None:
    name = unique_name("cli")

    created = moorage("user", "create", name, input="account-password-1\n")
    listed_before = moorage("user", "list")
    activated = moorage("user", "activate", name, input="registry-password-1\n")
    listed_after = moorage("user", "list")
    reset = moorage("user", "reset-password", name, input="account-password-2\n")

    assert created.stdout == f"account {name} created\n"
    assert f"{name}\tnot activated" in listed_before.stdout.splitlines()
    assert activated.stdout == f"registry activated for {name}\n"
    assert f"{name}\tactivated" in listed_after.stdout.splitlines()
    assert reset.stdout == f"account password of {name} replaced\n"
    assert httpx.get(f"{server.url}/v2/", auth=(name, "registry-password-1")).status_code == 200
    assert httpx.get(f"{server.url}{API}/me", auth=(name, "account-password-1")).status_code == 401
    assert httpx.get(f"{server.url}{API}/me", auth=(name, "account-password-2")).status_code == 200


def test_an_admin_is_listed_as_one(moorage: Moorage) -> None:
    name = unique_name("boss")

    created = moorage("user", "create", name, "--admin", input="boss-password\n")

    assert created.exit_code == 0
    assert f"{name}\tadmin, not activated" in moorage("user", "list").stdout.splitlines()


def test_reactivation_resets_the_registry_password(server: RunningServer, moorage: Moorage) -> None:
    name = unique_name("cli")
    moorage("user", "create", name, input="account-password\n")
    moorage("user", "activate", name, input="registry-password-1\n")

    moorage("user", "activate", name, input="registry-password-2\n")

    assert httpx.get(f"{server.url}/v2/", auth=(name, "registry-password-1")).status_code == 401
    assert httpx.get(f"{server.url}/v2/", auth=(name, "registry-password-2")).status_code == 200


def test_bad_user_commands_exit_cleanly(moorage: Moorage) -> None:
    name, nobody = unique_name("cli"), unique_name("nobody")
    moorage("user", "create", name, input="account-password\n")

    assert_refused(moorage("user", "create", name, input="another-password\n"), "exists already")
    assert_refused(
        moorage("user", "create", "Bad Name", input="account-password\n"), "account names"
    )
    assert_refused(moorage("user", "create", unique_name("u"), input="short\n"), "8 to 256")
    assert_refused(moorage("user", "create", unique_name("u"), input=""), "8 to 256")
    assert_refused(moorage("user", "activate", name, input="short\n"), "8 to 256")
    assert_refused(moorage("user", "activate", nobody, input="registry-pw\n"), "no account named")
    assert_refused(moorage("user", "reset-password", nobody, input="new-password\n"), "no account")
    assert_refused(moorage("user", "create"), "Missing argument", exit_code=2)


def test_namespaces_from_creation_to_deletion(server: RunningServer, moorage: Moorage) -> None:
    owner = unique_name("cli")
    first, second = sorted([unique_name("ns"), unique_name("ns")])
    moorage("user", "create", owner, input="account-password\n")

    created = [moorage("namespace", "create", name, "--owner", owner) for name in (second, first)]
    httpx.post(
        f"{server.url}{API}/namespaces/{first}/repositories",
        json={"name": "web"},
        auth=(owner, "account-password"),
    ).raise_for_status()
    listed = moorage("namespace", "list", "--owner", owner)
    deleted = moorage("namespace", "delete", second, "--owner", owner)

    assert [result.stdout for result in created] == [
        f"namespace {second} created for {owner}\n",
        f"namespace {first} created for {owner}\n",
    ]
    assert listed.stdout == f"{first}\t1 repositories\n{second}\t0 repositories\n"
    assert deleted.stdout == f"namespace {second} deleted\n"
    assert moorage("namespace", "list", "--owner", owner).stdout == f"{first}\t1 repositories\n"
    assert_refused(
        moorage("namespace", "delete", first, "--owner", owner),
        f"namespace {first} still holds 1 repositories; delete them first",
    )


def test_bad_namespace_commands_exit_cleanly(moorage: Moorage) -> None:
    owner, other, nobody = unique_name("cli"), unique_name("cli"), unique_name("nobody")
    for name in (owner, other):
        moorage("user", "create", name, input="account-password\n")
    taken = unique_name("ns")
    moorage("namespace", "create", taken, "--owner", owner)

    assert_refused(moorage("namespace", "create", "x", "--owner", owner), "2 to 30 characters")
    assert_refused(moorage("namespace", "create", "Caps", "--owner", owner), "lower-case")
    assert_refused(moorage("namespace", "create", taken, "--owner", other), "is taken")
    assert_refused(
        moorage("namespace", "create", unique_name("ns"), "--owner", nobody), "no account"
    )
    assert_refused(moorage("namespace", "list", "--owner", nobody), "no account named")
    assert_refused(moorage("namespace", "delete", taken, "--owner", other), "no namespace named")
    assert_refused(moorage("namespace", "create", unique_name("ns")), "--owner", exit_code=2)


def test_the_real_command_reads_passwords_from_stdin(server: RunningServer) -> None:
    name = unique_name("proc")

    created = server.cli("user", "create", name, stdin="account-password\n")
    short = server.cli("user", "activate", name, stdin="short\n")

    assert (created.returncode, created.stdout) == (0, f"account {name} created\n")
    assert httpx.get(f"{server.url}{API}/me", auth=(name, "account-password")).status_code == 200
    assert short.returncode == 1
    assert short.stderr == "moorage: passwords are 8 to 256 characters long\n"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            {"MOORAGE_ADMIN_USER": "Not Valid", "MOORAGE_ADMIN_PASSWORD": "long-enough"},
            "admin_user",
        ),
        ({"MOORAGE_ADMIN_USER": "root", "MOORAGE_ADMIN_PASSWORD": "short"}, "admin_password"),
        ({"MOORAGE_ADMIN_USER": "root"}, "admin_password"),
        ({"MOORAGE_ADMIN_PASSWORD": "long-enough"}, "admin_user"),
    ],
    ids=repr,
)
def test_a_bad_first_admin_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], says: str
) -> None:
    for key, value in settings.items():
        monkeypatch.setenv(key, value)

    with pytest.raises(ConfigurationError, match=says):
        load_settings()


def test_empty_first_admin_variables_mean_no_first_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_ADMIN_USER", "")
    monkeypatch.setenv("MOORAGE_ADMIN_PASSWORD", "")

    settings = load_settings()

    assert (settings.admin_user, settings.admin_password) == (None, None)


def test_a_bad_first_admin_stops_the_server_with_a_message(tmp_path: Path) -> None:
    from tests.conftest import RunningServer

    settings = {"MOORAGE_ADMIN_USER": "root", "MOORAGE_ADMIN_PASSWORD": "short"}
    running = RunningServer(tmp_path / "data", env=settings)

    with pytest.raises(RuntimeError, match="exited early") as failed:
        running.start()

    assert "admin_password" in str(failed.value)
    assert "Traceback" not in str(failed.value)
