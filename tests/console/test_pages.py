"""Console pages over HTTP against a real server: sign-in, forms and their errors, CSRF, CSP."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.console.conftest import API, ConsoleAccount, make_account
from tests.console.console_support import (
    ConsoleClient,
    field_errors,
    form_error,
    running_server,
    token_response,
)
from tests.support import OCI_INDEX, OCI_MANIFEST, image_manifest, push_image, push_manifest, sha256

if TYPE_CHECKING:
    from tests.conftest import RunningServer


@pytest.fixture
def console(server: RunningServer) -> Iterator[ConsoleClient]:
    """A console client nobody has signed in with yet."""
    with ConsoleClient(server) as client:
        yield client


@pytest.fixture
def signed_in(server: RunningServer, account: ConsoleAccount) -> Iterator[ConsoleClient]:
    """A console client signed in as a fresh account that owns one namespace."""
    with ConsoleClient(server) as client:
        client.sign_in(account.name, account.password)
        yield client


def api_get(server: RunningServer, account: ConsoleAccount, path: str) -> httpx.Response:
    """A management API read with the account's own password."""
    return httpx.get(f"{server.url}{API}{path}", auth=account.api_auth, timeout=60)


def test_a_visitor_lands_on_the_sign_in_page(console: ConsoleClient) -> None:
    assert console.get("/").headers["location"] == "/sign-in"
    assert console.get("/namespaces").headers["location"] == "/sign-in?next=%2Fnamespaces"
    page = console.get("/sign-in")
    assert page.status_code == 200
    assert "<h1>Sign in</h1>" in page.text


def test_pages_send_a_content_security_policy_and_no_inline_code(
    console: ConsoleClient, account: ConsoleAccount
) -> None:
    console.sign_in(account.name, account.password)
    for path in ["/sign-in", "/namespaces", "/tokens", "/quota", "/account", "/no-such-page"]:
        page = console.get(path, headers={"Accept": "text/html"})
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None, path
        assert " style=" not in page.text and " onclick=" not in page.text, path


def test_the_session_cookie_is_http_only_and_same_site(console: ConsoleClient) -> None:
    cookie = console.get("/sign-in").headers["set-cookie"]

    assert cookie.startswith("moorage_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see test_security for HTTPS
    assert re.search(r"Max-Age=\d+", cookie)


def test_a_wrong_password_is_refused_in_words(
    console: ConsoleClient, account: ConsoleAccount
) -> None:
    response = console.submit("/sign-in", {"name": account.name, "password": "not-it-at-all"})

    assert response.status_code == 400
    assert form_error(response) == "The account name or the password is wrong."
    assert f'value="{account.name}"' in response.text  # the name stays filled in
    assert console.get("/namespaces").status_code == 303


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(
    console: ConsoleClient, account: ConsoleAccount
) -> None:
    fields = {"name": account.name, "password": account.password}

    back = console.submit("/sign-in", {**fields, "next": "/tokens"})
    assert back.headers["location"] == "/tokens"
    console.submit("/sign-out")
    elsewhere = console.submit("/sign-in", {**fields, "next": "//evil.example/"})
    assert elsewhere.headers["location"] == "/"


def test_a_form_posted_without_the_csrf_token_is_refused_and_changes_nothing(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    without = signed_in.http.post("/namespaces", data={"name": "nocsrf" + account.name[-8:]})
    forged = signed_in.http.post(
        "/namespaces", data={"name": "forged" + account.name[-8:], "csrf_token": "guessed"}
    )

    for response in (without, forged):
        assert response.status_code == 403
        assert "This form has expired or did not come from this site" in response.text
    names = [item["name"] for item in api_get(server, account, "/namespaces").json()]
    assert names == [account.namespace]


def test_a_csrf_token_of_another_session_is_refused(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    with ConsoleClient(server) as stranger:
        token = stranger.csrf_token()

    response = signed_in.http.post(
        "/namespaces", data={"name": "other" + account.name[-8:], "csrf_token": token}
    )

    assert response.status_code == 403


def test_a_bad_namespace_name_is_explained_beside_the_field_and_nothing_is_made(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    response = signed_in.submit("/namespaces", {"name": "Not Valid!"})

    assert response.status_code == 400
    assert field_errors(response)["name"].startswith("Namespace names use lower-case letters")
    assert 'value="Not Valid!"' in response.text
    assert len(api_get(server, account, "/namespaces").json()) == 1


def test_a_namespace_is_created_and_an_empty_one_deleted(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    name = "made" + account.name[-10:]

    created = signed_in.submit("/namespaces", {"name": name})
    assert created.status_code == 303
    assert created.headers["location"] == f"/namespaces/{name}"
    assert f"Namespace {name} is created." in signed_in.get(f"/namespaces/{name}").text

    deleted = signed_in.submit(f"/namespaces/{name}/delete")
    assert deleted.status_code == 303
    names = [item["name"] for item in api_get(server, account, "/namespaces").json()]
    assert name not in names


def test_a_namespace_that_holds_repositories_is_kept_with_the_reason_shown(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    made = httpx.post(
        f"{server.url}{API}/namespaces/{account.namespace}/repositories",
        json={"name": "keeper"},
        auth=account.api_auth,
    )
    assert made.status_code == 201, made.text

    listing = signed_in.get("/namespaces")
    assert "Holds 1 repository: delete it first" in listing.text
    refused = signed_in.submit(f"/namespaces/{account.namespace}/delete")

    assert refused.status_code == 409
    assert form_error(refused) == (
        f"Namespace {account.namespace} still holds 1 repositories; delete them first."
    )
    assert len(api_get(server, account, "/namespaces").json()) == 1


def test_the_registry_password_page_shows_the_exact_login_commands(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    page = signed_in.get("/registry-password").text

    assert f"docker login {server.host} -u {account.name}" in page
    assert f"podman login --tls-verify=false {server.host} -u {account.name}" in page
    assert account.registry_password not in page


def test_a_bad_registry_password_changes_nothing(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    mismatch = signed_in.submit(
        "/registry-password", {"password": "long-enough-1", "password_again": "long-enough-2"}
    )
    short = signed_in.submit("/registry-password", {"password": "short", "password_again": "short"})

    assert field_errors(mismatch) == {"password_again": "The two passwords are not the same."}
    assert field_errors(short) == {"password": "Passwords are 8 to 256 characters long."}
    assert token_response(server, account.registry_auth).status_code == 200


def test_a_registry_password_reset_replaces_the_old_one(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    new_password = "a-brand-new-registry-password"

    done = signed_in.submit(
        "/registry-password", {"password": new_password, "password_again": new_password}
    )

    assert done.status_code == 303
    assert "Your registry password is reset" in signed_in.get("/registry-password").text
    assert token_response(server, account.registry_auth).status_code == 401
    assert token_response(server, (account.name, new_password)).status_code == 200


def test_activation_of_a_new_account(server: RunningServer, console_admin: tuple[str, str]) -> None:
    fresh = make_account(server, console_admin, activate=False, namespace=False)
    with ConsoleClient(server) as client:
        client.sign_in(fresh.name, fresh.password)
        assert "Registry access is not active yet" in client.get("/namespaces").text

        client.submit(
            "/registry-password",
            {"password": fresh.registry_password, "password_again": fresh.registry_password},
        )

        assert "Registry access is not active yet" not in client.get("/namespaces").text
    assert token_response(server, fresh.registry_auth).status_code == 200


def test_the_account_password_change_needs_the_current_one(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    wrong = signed_in.submit(
        "/account",
        {
            "current_password": "not-my-password",
            "new_password": "another-password",
            "new_password_again": "another-password",
        },
    )
    assert field_errors(wrong) == {"current_password": "This is not your current password."}

    changed = signed_in.submit(
        "/account",
        {
            "current_password": account.password,
            "new_password": "another-password",
            "new_password_again": "another-password",
        },
    )
    assert changed.status_code == 303
    assert api_get(server, account, "/me").status_code == 401


def test_a_new_token_secret_is_shown_once(signed_in: ConsoleClient) -> None:
    created = signed_in.submit("/tokens", {"name": "ci", "scope": "pull,push"})

    assert created.status_code == 201
    secret = re.search(r'<code id="new-token-secret">(mrt_[^<]+)</code>', created.text)
    assert secret is not None
    listing = signed_in.get("/tokens").text
    assert 'data-token="ci"' in listing
    assert secret.group(1) not in listing


def test_token_form_errors_are_shown_beside_their_fields(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    no_name = signed_in.submit("/tokens", {"name": "", "scope": "pull"})
    bad_expiry = signed_in.submit(
        "/tokens", {"name": "later", "scope": "pull", "expires_in_days": "soon"}
    )
    too_long = signed_in.submit(
        "/tokens", {"name": "later", "scope": "pull", "expires_in_days": "9999"}
    )

    assert field_errors(no_name) == {"name": "Token names are 1 to 64 printable characters."}
    assert field_errors(bad_expiry) == {
        "expires_in_days": "The expiry in days must be a whole number, such as 20."
    }
    assert "expires_in_days" in field_errors(too_long)
    assert api_get(server, account, "/tokens").json() == []


def test_a_token_is_revoked(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    signed_in.submit("/tokens", {"name": "short-lived", "scope": "pull"})
    token_id = api_get(server, account, "/tokens").json()[0]["id"]

    revoked = signed_in.submit(f"/tokens/{token_id}/revoke")

    assert revoked.status_code == 303
    assert api_get(server, account, "/tokens").json() == []


def test_a_quota_request_with_bad_numbers_is_not_sent(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    words = signed_in.submit("/quota", {"repositories": "many", "reason": "growing"})
    nothing = signed_in.submit("/quota", {"reason": "growing"})
    no_reason = signed_in.submit("/quota", {"repositories": "900", "reason": " "})

    assert field_errors(words) == {
        "repositories": "Repositories must be a whole number, such as 20."
    }
    assert field_errors(nothing) == {"repositories": "Ask for at least one higher limit."}
    assert field_errors(no_reason) == {"reason": "Say why, in 1 to 2000 characters."}
    assert api_get(server, account, "/quota-requests").json() == []


def test_a_quota_request_is_sent_and_shown_pending(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    sent = signed_in.submit("/quota", {"repositories": "900", "reason": "a monorepo"})

    assert sent.status_code == 303
    page = signed_in.get("/quota").text
    assert "badge-pending" in page and "Repositories: <strong>900</strong>" in page
    assert api_get(server, account, "/quota-requests").json()[0]["status"] == "pending"


def test_administration_is_refused_to_other_accounts(signed_in: ConsoleClient) -> None:
    assert signed_in.get("/admin/users").status_code == 403
    assert signed_in.get("/admin/quota-requests").status_code == 403
    assert (
        signed_in.submit("/admin/users", {"name": "sneaky", "password": "x" * 12}).status_code
        == 403
    )


def test_an_admin_creates_an_account_and_bad_input_is_explained(
    server: RunningServer, console_admin: tuple[str, str]
) -> None:
    with ConsoleClient(server) as client:
        client.sign_in(*console_admin)

        bad = client.submit("/admin/users", {"name": "Bad Name", "password": "long-enough"})
        taken = client.submit("/admin/users", {"name": console_admin[0], "password": "long-enough"})
        made = client.submit("/admin/users", {"name": "made-by-admin", "password": "long-enough"})

    assert field_errors(bad)["name"].startswith("Account names are 1 to 64")
    assert field_errors(taken) == {"name": "An account named 'console-admin' exists already."}
    assert made.status_code == 303
    users = httpx.get(f"{server.url}{API}/users", auth=console_admin).json()
    assert "made-by-admin" in [user["name"] for user in users]


def test_the_api_takes_the_session_cookie_but_writes_need_the_csrf_header(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    me = signed_in.http.get(f"{API}/me")
    assert me.status_code == 200 and me.json()["name"] == account.name

    name = "apins" + account.name[-8:]
    refused = signed_in.http.post(f"{API}/namespaces", json={"name": name})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "DENIED"

    token = signed_in.csrf_token()
    made = signed_in.http.post(
        f"{API}/namespaces", json={"name": name}, headers={"X-CSRF-Token": token}
    )
    assert made.status_code == 201


def test_signing_out_ends_the_session(signed_in: ConsoleClient) -> None:
    out = signed_in.submit("/sign-out")

    assert out.headers["location"] == "/sign-in"
    assert signed_in.get("/namespaces").status_code == 303
    assert signed_in.http.get(f"{API}/me").status_code == 401


def test_a_repository_page_lists_tags_with_size_platform_and_pull_command(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    repository = f"{account.namespace}/web"
    with httpx.Client(base_url=server.url, auth=account.registry_auth, timeout=60) as registry:
        digest = push_image(registry, repository, "v1", layers=2)

    page = signed_in.get(f"/repositories/{repository}")

    assert page.status_code == 200
    row = page.text.split('data-tag="v1"', 1)[1].split("</tr>", 1)[0]
    assert digest[:19] in row and f'data-copy="{digest}"' in row
    assert "linux/amd64" in row
    assert "2.1 kB" in row  # two layers of 1024 bytes and the config
    assert f'data-copy="docker pull {server.host}/{repository}:v1"' in row


def test_someone_elses_repository_is_not_found(
    server: RunningServer, signed_in: ConsoleClient
) -> None:
    assert signed_in.get("/repositories/test/anything").status_code == 404
    assert signed_in.get("/namespaces/test").status_code == 404
    assert signed_in.submit("/namespaces/test/delete").status_code == 404


def test_a_tag_is_deleted_and_restored(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    repository = f"{account.namespace}/api"
    with httpx.Client(base_url=server.url, auth=account.registry_auth, timeout=60) as registry:
        push_image(registry, repository, "v1", layers=1)

    deleted = signed_in.submit(f"/repositories/{repository}/-/tags/v1/delete")
    assert deleted.status_code == 303
    assert 'data-tag="v1"' not in signed_in.get(f"/repositories/{repository}").text

    restorable = signed_in.get(f"/namespaces/{account.namespace}/deleted").text
    item = re.search(r"/deleted/(tag-\d+)/restore", restorable)
    assert item is not None
    restored = signed_in.submit(f"/namespaces/{account.namespace}/deleted/{item.group(1)}/restore")

    assert restored.headers["location"] == f"/repositories/{repository}"
    assert 'data-tag="v1"' in signed_in.get(f"/repositories/{repository}").text


def test_a_repository_is_deleted_only_when_its_name_is_typed(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    repository = f"{account.namespace}/doomed"
    with httpx.Client(base_url=server.url, auth=account.registry_auth, timeout=60) as registry:
        push_image(registry, repository, "v1", layers=1)
    confirm_page = signed_in.get(f"/repositories/{repository}/-/delete").text
    assert "All 1 tag of this repository go with it." in confirm_page
    backup_link = f"/api/v1/repositories/{repository}/export"
    assert f'href="{backup_link}"' in confirm_page
    backup = signed_in.get(backup_link)  # with the session cookie, as the browser follows it
    assert backup.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(backup.content)) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
    assert [
        entry["annotations"]["org.opencontainers.image.ref.name"] for entry in index["manifests"]
    ] == ["v1"]

    wrong = signed_in.submit(f"/repositories/{repository}/-/delete", {"confirm": "doomed"})
    assert wrong.status_code == 400
    assert field_errors(wrong)["confirm"].startswith(f"Deleting {repository} removes every tag")
    assert signed_in.get(f"/repositories/{repository}").status_code == 200

    done = signed_in.submit(f"/repositories/{repository}/-/delete", {"confirm": repository})
    assert done.headers["location"] == f"/namespaces/{account.namespace}"
    assert signed_in.get(f"/repositories/{repository}").status_code == 404


def test_repositories_are_searched_and_paged(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    # Through the API with the console session: no password hashing per request.
    csrf = {"X-CSRF-Token": signed_in.csrf_token()}
    for number in range(23):
        made = signed_in.http.post(
            f"{API}/namespaces/{account.namespace}/repositories",
            json={"name": f"app-{number:02d}"},
            headers=csrf,
        )
        assert made.status_code == 201, made.text
    base = f"/namespaces/{account.namespace}"

    first = signed_in.get(base).text
    second = signed_in.get(f"{base}?after={account.namespace}/app-19").text
    found = signed_in.get(f"{base}?q=app-07").text

    assert f"{account.namespace}/app-19" in first and f"{account.namespace}/app-20" not in first
    assert "Next page" in first
    assert f"{account.namespace}/app-22" in second and f"{account.namespace}/app-19<" not in second
    assert found.count('class="strong" href="/repositories/') == 1


def test_registry_paths_keep_their_own_error_answers(server: RunningServer) -> None:
    unknown = httpx.get(f"{server.url}/v2/no/such/route/here")
    assert unknown.headers["content-type"] == "application/json"
    assert httpx.get(f"{server.url}{API}/nothing-here").headers["content-type"] == (
        "application/json"
    )
    page = httpx.get(f"{server.url}/nothing-here", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "There is no page at this address." in page.text
    stray = httpx.get(f"{server.url}/v3/")
    assert stray.status_code == 404 and stray.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_sign_up_is_off_unless_the_operator_turns_it_on(
    console: ConsoleClient, tmp_path: Path
) -> None:
    assert console.get("/sign-up").status_code == 403
    assert "Create an account" not in console.get("/sign-in").text

    settings = {"MOORAGE_AUTH__ALLOW_SIGNUP": "true"}
    with running_server(tmp_path, settings) as open_server, ConsoleClient(open_server) as visitor:
        assert "/sign-up" in visitor.get("/sign-in").text
        bad = visitor.submit(
            "/sign-up", {"name": "newbie", "password": "long-enough", "password_again": "x"}
        )
        assert field_errors(bad) == {"password_again": "The two passwords are not the same."}
        done = visitor.submit(
            "/sign-up",
            {"name": "newbie", "password": "long-enough", "password_again": "long-enough"},
        )
        assert done.headers["location"] == "/registry-password"
        assert "Welcome! Your account is ready." in visitor.get("/registry-password").text


def test_a_build_rule_with_bad_input_is_explained_and_not_saved(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    good = {
        "repository": f"{account.namespace}/app",
        "git_url": "https://git.example/app.git",
        "ref": "main",
    }

    bad_url = signed_in.submit("/builds/rules", {**good, "git_url": "-upload-pack=evil"})
    not_mine = signed_in.submit("/builds/rules", {**good, "repository": "test/app"})
    bad_args = signed_in.submit("/builds/rules", {**good, "build_args": "VERSION"})
    escaping = signed_in.submit("/builds/rules", {**good, "build_dir": "../outside"})

    assert field_errors(bad_url) == {"git_url": "Git_url must not start with '-'."}
    assert field_errors(not_mine) == {"repository": "You have no namespace named 'test'."}
    assert field_errors(bad_args) == {"build_args": "Build argument 'VERSION' is not KEY=VALUE."}
    assert list(field_errors(escaping)) == ["build_dir"]
    assert api_get(server, account, "/builds/rules").json() == []


def test_a_build_rule_shows_its_defaults_and_webhook_but_never_the_secret(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    form = signed_in.get("/builds/rules/new").text
    assert 'name="dockerfile" type="text" value="Dockerfile"' in form
    assert 'name="build_dir" type="text" value="./"' in form

    created = signed_in.submit(
        "/builds/rules",
        {
            "repository": f"{account.namespace}/app",
            "git_url": "https://git.example/app.git",
            "ref": "main",
            "dockerfile": "Dockerfile",
            "build_dir": "./",
            "build_args": "VERSION=1.2\nCHANNEL=beta",
        },
    )
    assert created.status_code == 303
    rule = api_get(server, account, "/builds/rules").json()[0]
    assert created.headers["location"] == f"/builds/rules/{rule['id']}"
    assert rule["build_args"] == {"VERSION": "1.2", "CHANNEL": "beta"}

    page = signed_in.get(f"/builds/rules/{rule['id']}").text
    assert f"{server.url}/api/v1/hooks/builds/{rule['id']}" in page
    assert rule["webhook_secret"] not in page
    assert "VERSION=1.2" in page and "CHANNEL=beta" in page


def test_a_build_rule_is_edited_and_a_bad_run_ref_is_refused(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    fields = {
        "repository": f"{account.namespace}/app",
        "git_url": "https://git.example/app.git",
        "ref": "main",
    }
    signed_in.submit("/builds/rules", fields)
    rule_id = api_get(server, account, "/builds/rules").json()[0]["id"]
    page = f"/builds/rules/{rule_id}"

    bad_ref = signed_in.submit(page, {**fields, "ref": "bad..ref"})
    saved = signed_in.submit(page, {**fields, "ref": "release", "tag_template": "{branch}-x"})
    bad_run = signed_in.submit(f"{page}/run", {"ref": "no spaces allowed"})

    assert list(field_errors(bad_ref)) == ["ref"]
    assert saved.status_code == 303
    rule = api_get(server, account, f"/builds/rules/{rule_id}").json()
    assert (rule["ref"], rule["tag_template"]) == ("release", "{branch}-x")
    assert list(field_errors(bad_run)) == ["run_ref"]
    assert api_get(server, account, "/builds").json() == []


def test_an_admin_sets_limits_and_bad_numbers_are_explained(
    server: RunningServer, console_admin: tuple[str, str], account: ConsoleAccount
) -> None:
    with ConsoleClient(server) as client:
        client.sign_in(*console_admin)
        page = f"/admin/users/{account.name}"

        bad = client.submit(f"{page}/limits", {"repositories": "lots"})
        saved = client.submit(f"{page}/limits", {"repositories": "42"})
        short = client.submit(f"{page}/password", {"password": "short"})

    assert field_errors(bad) == {"repositories": "Repositories must be a whole number, such as 20."}
    assert saved.status_code == 303
    assert api_get(server, account, "/quota").json()["limits"]["repositories"] == 42
    assert field_errors(short) == {"password": "Passwords are 8 to 256 characters long."}


def test_a_multi_platform_tag_lists_its_platforms_and_total_size(
    server: RunningServer, signed_in: ConsoleClient, account: ConsoleAccount
) -> None:
    repository = f"{account.namespace}/multi"
    entries = []
    with httpx.Client(base_url=server.url, auth=account.registry_auth, timeout=60) as registry:
        for architecture in ("amd64", "arm64"):
            manifest = image_manifest(registry, repository, layers=1)
            pushed = push_manifest(registry, repository, sha256(manifest), manifest)
            assert pushed.status_code == 201, pushed.text
            platform = {"os": "linux", "architecture": architecture}
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "platform": platform,
                }
            )
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        tagged = push_manifest(registry, repository, "1.0", index.encode(), OCI_INDEX)
        assert tagged.status_code == 201, tagged.text

    page = signed_in.get(f"/repositories/{repository}").text

    row = page.split('data-tag="1.0"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="chip">linux/amd64</span>' in row
    assert '<span class="chip">linux/arm64</span>' in row
    assert "2.2 kB" in row  # two images of one 1024-byte layer and a config each
