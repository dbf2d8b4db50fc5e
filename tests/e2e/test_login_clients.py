"""skopeo, podman and buildah log in (registry password or access token) and push and pull.

Each client logs in with `login --authfile <tmp>/auth.json --password-stdin` and then uses only
that auth file, as a person would. Another account, or nobody, is refused on the first
account's repository exactly as on a missing one, in the clients' words and on the wire.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.account_support import (
    ADMIN,
    API,
    assert_not_logged,
    bearer,
    bearer_token,
    error_body_without,
    new_access_token,
    new_account,
    server_with,
    unique_name,
)
from tests.e2e.clients import (
    COMMAND_TIMEOUT_SECONDS,
    isolated_environment,
    short_directory,
    write_policy,
)
from tests.e2e.layout import OciLayout, build_image, random_files

if TYPE_CHECKING:
    from tests.conftest import RunningServer

FILES = random_files("srv/app", count=2, size=4096)


class LoggedInClient:
    """One client program with private storage and its own auth file, filled by `login`."""

    def __init__(self, program: str, home: Path, runroot: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.program = program
        self.env = isolated_environment(home)
        self.policy = write_policy(home)
        self.authfile = home / "login-auth.json"
        self.prefix = [program]
        if program != "skopeo":
            self.prefix += ["--root", str(home / "storage"), "--runroot", str(runroot)]
            self.prefix += ["--storage-driver", "vfs"]
        if program == "podman":
            self.prefix += ["--tmpdir", str(home / "libpod"), "--events-backend", "none"]

    def run(self, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The command's result, whatever its exit status."""
        return subprocess.run(
            [*self.prefix, *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def must(self, *arguments: str) -> str:
        """The command's stdout; it must succeed."""
        result = self.run(*arguments)
        assert result.returncode == 0, f"{self.program} {arguments}:\n{result.stderr}"
        return result.stdout

    def login(
        self, host: str, name: str, secret: str, *tls: str
    ) -> subprocess.CompletedProcess[str]:
        tls = tls or ("--tls-verify=false",)
        return self.run(
            "login",
            *tls,
            "--authfile",
            str(self.authfile),
            "-u",
            name,
            "--password-stdin",
            host,
            stdin=f"{secret}\n",
        )

    def options(self) -> list[str]:
        """What a pull or push needs: plain HTTP, the signature policy, the auth file."""
        policy = ["--signature-policy", str(self.policy)] if self.program != "skopeo" else []
        return ["--tls-verify=false", *policy, "--authfile", str(self.authfile)]

    def copy(self, source: str, destination: str, *tls: str) -> None:
        """`skopeo copy` with the auth file; plain HTTP on the registry side unless `tls`."""
        if not tls:
            side = "--src" if source.startswith("docker://") else "--dest"
            tls = (f"{side}-tls-verify=false",)
        self.must(
            "--policy",
            str(self.policy),
            "copy",
            "--authfile",
            str(self.authfile),
            *tls,
            source,
            destination,
        )

    def skopeo(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """`skopeo --policy P COMMAND --authfile A ARGS...` (skopeo's policy is global)."""
        command, *rest = arguments
        return self.run(
            "--policy", str(self.policy), command, "--authfile", str(self.authfile), *rest
        )


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[dict[str, LoggedInClient]]:
    with short_directory() as podman_run, short_directory() as buildah_run:
        yield {
            "skopeo": LoggedInClient("skopeo", tmp_path / "skopeo", tmp_path),
            "podman": LoggedInClient("podman", tmp_path / "podman", podman_run),
            "buildah": LoggedInClient("buildah", tmp_path / "buildah", buildah_run),
        }


def source_layout(tmp_path: Path) -> OciLayout:
    layout = OciLayout(tmp_path / "source").create()
    layout.add_image(build_image([FILES]), "v1")
    return layout


def without_noise(text: str, *names: str) -> str:
    """A client's error output with timestamps dropped and repository names blanked."""
    text = re.sub(r'time="[^"]*" ', "", text)
    for name in names:
        text = text.replace(name, "NAME")
    return text


@pytest.mark.parametrize("credential", ["registry password", "access token"])
def test_each_client_logs_in_pushes_and_pulls(
    server: RunningServer,
    admin: tuple[str, str],
    clients: dict[str, LoggedInClient],
    tmp_path: Path,
    credential: str,
) -> None:
    account = new_account(server, admin)
    secret = account.registry_password
    if credential == "access token":
        secret = str(new_access_token(server, account, "pull,push")["secret"])
    skopeo, podman, buildah = clients["skopeo"], clients["podman"], clients["buildah"]
    base = f"{server.host}/{account.namespace}"

    for client in clients.values():
        logged_in = client.login(server.host, account.name, secret)
        assert logged_in.returncode == 0, logged_in.stderr
        assert server.host in client.authfile.read_text()

    # skopeo pushes; podman pulls that and pushes a copy; buildah pulls the copy and pushes.
    skopeo.copy(f"oci:{source_layout(tmp_path).path}:v1", f"docker://{base}/by-skopeo:v1")
    podman.must("pull", *podman.options(), f"{base}/by-skopeo:v1")
    podman.must("tag", f"{base}/by-skopeo:v1", f"{base}/by-podman:v1")
    podman.must("push", *podman.options(), f"{base}/by-podman:v1")
    buildah.must("pull", *buildah.options(), f"{base}/by-podman:v1")
    buildah.must(
        "push", *buildah.options(), f"{base}/by-podman:v1", f"docker://{base}/by-buildah:v1"
    )
    pulled = OciLayout(tmp_path / "pulled")
    skopeo.copy(f"docker://{base}/by-buildah:v1", f"oci:{pulled.path}:v1")

    assert pulled.files(str(pulled.tagged("v1")["digest"])) == FILES
    catalog = httpx.get(f"{server.url}/v2/_catalog", auth=(account.name, secret)).json()
    assert catalog == {
        "repositories": [
            f"{account.namespace}/by-{tool}" for tool in ("buildah", "podman", "skopeo")
        ]
    }
    assert_not_logged(server, secret, account.password)


def test_others_and_anonymous_are_refused_as_on_a_missing_repository(
    server: RunningServer,
    admin: tuple[str, str],
    clients: dict[str, LoggedInClient],
    tmp_path: Path,
) -> None:
    alice, bob = new_account(server, admin), new_account(server, admin)
    existing, missing = f"{alice.namespace}/app", f"{alice.namespace}/nothing"
    elsewhere = f"{unique_name('nobody')}/app"
    owner = clients["skopeo"]
    assert owner.login(server.host, alice.name, alice.registry_password).returncode == 0
    owner.copy(f"oci:{source_layout(tmp_path).path}:v1", f"docker://{server.host}/{existing}:v1")
    podman, buildah = clients["podman"], clients["buildah"]
    assert podman.login(server.host, bob.name, bob.registry_password).returncode == 0
    assert buildah.login(server.host, bob.name, bob.registry_password).returncode == 0
    skopeo_as_bob = LoggedInClient("skopeo", tmp_path / "bob-skopeo", tmp_path)
    assert skopeo_as_bob.login(server.host, bob.name, bob.registry_password).returncode == 0

    for other in (missing, elsewhere):
        pair = (existing, other)
        inspect = [
            skopeo_as_bob.skopeo(
                "inspect", "--raw", "--tls-verify=false", f"docker://{server.host}/{name}:v1"
            )
            for name in pair
        ]
        anonymous = [
            skopeo_as_bob.run(
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--no-creds",
                f"docker://{server.host}/{name}:v1",
            )
            for name in pair
        ]
        pulls = [podman.run("pull", *podman.options(), f"{server.host}/{name}:v1") for name in pair]
        from_buildah = [
            buildah.run("pull", *buildah.options(), f"{server.host}/{name}:v1") for name in pair
        ]
        for to_existing, to_other in (inspect, anonymous, pulls, from_buildah):
            assert to_existing.returncode != 0
            assert to_other.returncode == to_existing.returncode
            assert without_noise(to_existing.stderr, existing) == without_noise(
                to_other.stderr, other
            )
        assert "denied" in inspect[0].stderr

        # And on the wire: status, body and challenge alike, with Basic, Bearer or nothing.
        for headers, auth in [({}, bob.registry_auth), ({}, None)]:
            answers = [
                httpx.get(f"{server.url}/v2/{name}/manifests/v1", headers=headers, auth=auth)
                for name in pair
            ]
            assert answers[0].status_code == answers[1].status_code
            assert error_body_without(answers[0], existing) == error_body_without(answers[1], other)
        tokens = [
            bearer_token(server, bob.registry_auth, f"repository:{name}:pull") for name in pair
        ]
        answers = [
            httpx.get(f"{server.url}/v2/{name}/manifests/v1", headers=bearer(token))
            for name, token in zip(pair, tokens, strict=True)
        ]
        assert answers[0].status_code == answers[1].status_code == 403
        assert error_body_without(answers[0], existing) == error_body_without(answers[1], other)


def test_a_pull_only_token_pulls_but_cannot_push(
    server: RunningServer,
    admin: tuple[str, str],
    clients: dict[str, LoggedInClient],
    tmp_path: Path,
) -> None:
    account = new_account(server, admin)
    base = f"{server.host}/{account.namespace}"
    pusher, puller = clients["skopeo"], clients["podman"]
    assert pusher.login(server.host, account.name, account.registry_password).returncode == 0
    pusher.copy(f"oci:{source_layout(tmp_path).path}:v1", f"docker://{base}/app:v1")
    secret = str(new_access_token(server, account, "pull")["secret"])
    assert puller.login(server.host, account.name, secret).returncode == 0

    puller.must("pull", *puller.options(), f"{base}/app:v1")
    puller.must("tag", f"{base}/app:v1", f"{base}/app:v2")
    pushed = puller.run("push", *puller.options(), f"{base}/app:v2")

    assert pushed.returncode != 0
    assert "denied" in pushed.stderr
    assert "allow only pull" in pushed.stderr
    tags = httpx.get(
        f"{server.url}/v2/{account.namespace}/app/tags/list", auth=account.registry_auth
    )
    assert tags.json()["tags"] == ["v1"]


def test_a_reset_registry_password_stops_the_old_one_at_once(
    server: RunningServer,
    admin: tuple[str, str],
    clients: dict[str, LoggedInClient],
    tmp_path: Path,
) -> None:
    account = new_account(server, admin)
    skopeo = clients["skopeo"]
    assert skopeo.login(server.host, account.name, account.registry_password).returncode == 0
    reference = f"docker://{server.host}/{account.namespace}/app:v1"
    skopeo.copy(f"oci:{source_layout(tmp_path).path}:v1", reference)

    reset = httpx.put(
        f"{server.url}{API}/me/registry-password",
        json={"password": "the-new-registry-password"},
        auth=account.api_auth,
    )
    assert reset.status_code == 200

    stale = skopeo.skopeo("inspect", "--raw", "--tls-verify=false", reference)
    assert stale.returncode != 0
    assert "invalid username or password" in stale.stderr
    assert skopeo.login(server.host, account.name, account.registry_password).returncode != 0
    assert skopeo.login(server.host, account.name, "the-new-registry-password").returncode == 0
    assert skopeo.skopeo("inspect", "--raw", "--tls-verify=false", reference).returncode == 0


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moorage test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certificate_path, key_path = directory / "ca.crt", directory / "server.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path


def test_push_and_pull_over_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    certificate, key = self_signed_certificate(tmp_path / "certs")
    # skopeo reads every *.crt in --cert-dir as a trusted CA; the key must not sit beside it.
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "ca.crt").write_bytes(certificate.read_bytes())
    tls = ("--tls-cert", str(certificate), "--tls-key", str(key))

    with server_with(tmp_path / "tls", serve_args=tls, scheme="https") as running:
        account = new_account(running, ADMIN)
        skopeo = LoggedInClient("skopeo", tmp_path / "skopeo", tmp_path)
        logged_in = skopeo.login(
            running.host, account.name, account.registry_password, "--cert-dir", str(trusted)
        )
        assert logged_in.returncode == 0, logged_in.stderr
        reference = f"docker://{running.host}/{account.namespace}/app:v1"
        pulled = OciLayout(tmp_path / "pulled")

        source = f"oci:{source_layout(tmp_path).path}:v1"
        skopeo.copy(source, reference, "--dest-cert-dir", str(trusted))
        skopeo.copy(reference, f"oci:{pulled.path}:v1", "--src-cert-dir", str(trusted))
        untrusted = skopeo.skopeo("inspect", "--raw", reference)
        challenge = httpx.get(
            f"{running.url}/v2/", verify=ssl.create_default_context(cafile=certificate)
        )

    assert pulled.files(str(pulled.tagged("v1")["digest"])) == FILES
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr
    assert f'realm="https://{running.host}/auth/token"' in challenge.headers["www-authenticate"]
