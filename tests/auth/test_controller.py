"""The access check of every /v2 request, against a real server: bearer tokens and HTTP Basic.

Someone else's repository must look exactly like a missing one: same status, same body and
same challenge, names aside.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tests.account_support import (
    API,
    Account,
    bearer,
    bearer_token,
    error_body_without,
    jwt_claims,
    new_access_token,
    new_account,
    token_response,
    unique_name,
)
from tests.support import assert_error, push_blob, push_image, sha256

from moorage.metadata.database import Database
from moorage.secret_keys import SecretKeys

if TYPE_CHECKING:
    from tests.conftest import RunningServer


@pytest.fixture(scope="module")
def alice(server: RunningServer, admin: tuple[str, str]) -> Account:
    """An owner with one pushed repository, `<namespace>/app:v1`, and a second namespace."""
    owner = new_account(server, admin)
    with httpx.Client(base_url=server.url, auth=owner.registry_auth) as registry:
        push_image(registry, f"{owner.namespace}/app", "v1")
    made = httpx.post(
        f"{server.url}{API}/namespaces",
        json={"name": f"{owner.namespace}-two"},
        auth=owner.api_auth,
    )
    assert made.status_code == 201, made.text
    return owner


@pytest.fixture(scope="module")
def bob(server: RunningServer, admin: tuple[str, str]) -> Account:
    return new_account(server, admin)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def signing_key(server: RunningServer) -> ec.EllipticCurvePrivateKey:
    async def read() -> ec.EllipticCurvePrivateKey:
        database = Database(server.settings().resolved_database_url)
        try:
            keys = SecretKeys(database, legacy_dir=None)
            await keys.load()
            return keys.token_signing_key()
        finally:
            await database.close()

    return asyncio.run(read())


def forged(
    server: RunningServer,
    token: str,
    key: ec.EllipticCurvePrivateKey | None = None,
    **changes: object,
) -> str:
    """`token` with `changes` to its claims, signed again (by the server's key by default)."""
    header = jwt.get_unverified_header(token)
    claims = {**jwt_claims(token), **changes}
    return jwt.encode(claims, key or signing_key(server), algorithm="ES256", headers=header)


def requests_on(repository: str, digest: str) -> list[tuple[str, str, bytes | None]]:
    """One request of each kind a client makes on a repository: method, path, body."""
    return [
        ("GET", f"/v2/{repository}/manifests/v1", None),
        ("HEAD", f"/v2/{repository}/manifests/v1", None),
        ("GET", f"/v2/{repository}/blobs/{digest}", None),
        ("GET", f"/v2/{repository}/tags/list", None),
        ("GET", f"/v2/{repository}/referrers/{digest}", None),
        ("POST", f"/v2/{repository}/blobs/uploads/", None),
        ("PUT", f"/v2/{repository}/manifests/v2", b"{}"),
        ("DELETE", f"/v2/{repository}/manifests/{digest}", None),
        ("DELETE", f"/v2/{repository}/blobs/{digest}", None),
    ]


def assert_alike(first: httpx.Response, second: httpx.Response, names: tuple[str, str]) -> None:
    """Two answers that differ in nothing but the repository name they speak of."""
    assert first.status_code == second.status_code
    assert error_body_without(first, names[0]) == error_body_without(second, names[1])
    challenges = [
        response.headers.get("www-authenticate", "").replace(name, "NAME")
        for response, name in [(first, names[0]), (second, names[1])]
    ]
    assert challenges[0] == challenges[1]


def test_someone_elses_repository_looks_exactly_like_a_missing_one(
    server: RunningServer, http: httpx.Client, alice: Account, bob: Account
) -> None:
    existing = f"{alice.namespace}/app"
    digest = http.head(f"/v2/{existing}/manifests/v1", auth=alice.registry_auth).headers[
        "docker-content-digest"
    ]
    missing = [f"{alice.namespace}/nothing", f"{unique_name('nobody')}/app"]
    scope = "pull,push,delete"

    for other in missing:
        tokens = {
            name: bearer(bearer_token(server, bob.registry_auth, f"repository:{name}:{scope}"))
            for name in (existing, other)
        }
        for method, path, body in requests_on(existing, digest):
            paths = (path, path.replace(existing, other))
            answers = [
                tuple(http.request(method, each, content=body, auth=auth) for each in paths)
                for auth in (bob.registry_auth, None)
            ]
            answers.append(
                tuple(
                    http.request(method, each, content=body, headers=tokens[name])
                    for each, name in zip(paths, (existing, other), strict=True)
                )
            )
            for to_existing, to_missing in answers:
                assert to_existing.status_code in (401, 403), (method, path, to_existing.text)
                assert_alike(to_existing, to_missing, (existing, other))


def test_anonymous_requests_get_a_challenge_naming_the_scope(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    pull = http.get(f"/v2/{alice.namespace}/app/manifests/v1")
    push = http.post(f"/v2/{alice.namespace}/app/blobs/uploads/")
    base = http.get("/v2/")

    realm = f'Bearer realm="{server.url}/auth/token",service="moorage"'
    assert_error(pull, 401, "UNAUTHORIZED")
    assert pull.headers["www-authenticate"] == (
        f'{realm},scope="repository:{alice.namespace}/app:pull"'
    )
    assert push.headers["www-authenticate"] == (
        f'{realm},scope="repository:{alice.namespace}/app:pull,push"'
    )
    assert_error(base, 401, "UNAUTHORIZED")
    assert base.headers["www-authenticate"] == realm


def test_a_bearer_token_works_for_what_it_grants(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    token = bearer_token(server, alice.registry_auth, f"repository:{alice.namespace}/app:pull")

    assert (
        http.get(f"/v2/{alice.namespace}/app/manifests/v1", headers=bearer(token)).status_code
        == 200
    )
    assert http.get("/v2/", headers=bearer(token)).status_code == 200
    refused = http.post(f"/v2/{alice.namespace}/app/blobs/uploads/", headers=bearer(token))
    assert_error(refused, 403, "DENIED")
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert (
        f'scope="repository:{alice.namespace}/app:pull,push"' in refused.headers["www-authenticate"]
    )
    assert "allow only pull" in refused.json()["errors"][0]["message"]
    other = http.get(f"/v2/{alice.namespace}/other/tags/list", headers=bearer(token))
    assert_error(other, 403, "DENIED")


def assert_invalid_token(response: httpx.Response) -> None:
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_expired_tokens_are_refused(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    token = bearer_token(server, alice.registry_auth, f"repository:{alice.namespace}/app:pull")
    now = int(time.time())
    path = f"/v2/{alice.namespace}/app/manifests/v1"

    expired = forged(server, token, iat=now - 900, nbf=now - 900, exp=now - 120)
    still_fine = forged(server, token)

    assert_invalid_token(http.get(path, headers=bearer(expired)))
    assert http.get(path, headers=bearer(still_fine)).status_code == 200


def test_tokens_signed_by_another_key_or_altered_are_refused(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    token = bearer_token(server, alice.registry_auth, f"repository:{alice.namespace}/app:pull")
    path = f"/v2/{alice.namespace}/app/manifests/v1"
    header, payload, signature = token.split(".")
    more = forged(
        server,
        token,
        access=[
            {"type": "repository", "name": f"{alice.namespace}/app", "actions": ["pull", "push"]}
        ],
    )
    tampered = f"{header}.{more.split('.')[1]}.{signature}"

    other_key = forged(server, token, key=ec.generate_private_key(ec.SECP256R1()))

    assert_invalid_token(http.get(path, headers=bearer(other_key)))
    assert_invalid_token(http.get(path, headers=bearer(tampered)))
    assert_invalid_token(http.get(path, headers=bearer(f"{header}.{payload}.")))


def test_a_refresh_token_is_no_access_token(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    refresh = token_response(
        server, alice.registry_auth, f"repository:{alice.namespace}/app:pull", offline_token="true"
    ).json()["refresh_token"]

    assert_invalid_token(
        http.get(f"/v2/{alice.namespace}/app/manifests/v1", headers=bearer(refresh))
    )
    assert_invalid_token(http.get("/v2/", headers=bearer(refresh)))


def basic(text: bytes) -> str:
    return "Basic " + base64.b64encode(text).decode()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Basic",
        "Basic !!!not-base64",
        basic(b"no-colon-here"),
        basic(b":only-a-secret"),
        basic(b"only-a-name:"),
        basic(b"\xff\xfe:not-utf8"),
        "Digest username=alice",
        "Bearer a.b.c",
        "Bearer not-a-jwt-at-all",
        "Bearer " + "x" * 6000,
        "Basic " + "A" * 6000,
    ],
    ids=lambda header: header[:30],
)
def test_malformed_authorization_headers_are_unauthorized(
    http: httpx.Client, alice: Account, header: str
) -> None:
    for path in ["/v2/", f"/v2/{alice.namespace}/app/manifests/v1"]:
        response = http.get(path, headers={"Authorization": header})

        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"].startswith("Bearer realm=")


def test_wrong_registry_passwords_are_unauthorized(http: httpx.Client, alice: Account) -> None:
    for auth in [(alice.name, "wrong-password"), alice.api_auth, ("nobody-here", "whatever1")]:
        response = http.get(f"/v2/{alice.namespace}/app/manifests/v1", auth=auth)

        assert_error(response, 401, "UNAUTHORIZED")
        assert response.json()["errors"][0]["message"] == "invalid username or password"


def test_the_catalog_lists_only_the_callers_repositories(
    server: RunningServer, http: httpx.Client, alice: Account, bob: Account
) -> None:
    with httpx.Client(base_url=server.url, auth=bob.registry_auth) as registry:
        push_blob(registry, f"{bob.namespace}/b-one", b"one")
        push_blob(registry, f"{bob.namespace}/b-two", b"two")
    expected = [f"{bob.namespace}/b-one", f"{bob.namespace}/b-two"]
    token = bearer_token(server, bob.registry_auth, "registry:catalog:*")

    with_basic = http.get("/v2/_catalog", auth=bob.registry_auth)
    with_bearer = http.get("/v2/_catalog", headers=bearer(token))
    first_page = http.get("/v2/_catalog", params={"n": 1}, auth=bob.registry_auth)
    second_page = http.get(
        "/v2/_catalog", params={"n": 1, "last": expected[0]}, auth=bob.registry_auth
    )

    assert with_basic.json() == {"repositories": expected}
    assert with_bearer.json() == {"repositories": expected}
    assert first_page.json() == {"repositories": expected[:1]}
    assert 'rel="next"' in first_page.headers["link"]
    assert second_page.json() == {"repositories": expected[1:]}
    assert f"{alice.namespace}/app" in http.get("/v2/_catalog", auth=alice.registry_auth).text
    assert_error(http.get("/v2/_catalog"), 401, "UNAUTHORIZED")
    no_catalog = bearer_token(server, bob.registry_auth, f"repository:{bob.namespace}/b-one:pull")
    assert_error(http.get("/v2/_catalog", headers=bearer(no_catalog)), 403, "DENIED")


def test_a_token_limited_to_one_namespace_sees_and_pushes_only_there(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    second = f"{alice.namespace}-two"
    token = new_access_token(server, alice, "pull,push", namespace=second)
    auth = (alice.name, str(token["secret"]))

    with httpx.Client(base_url=server.url, auth=auth) as registry:
        push_blob(registry, f"{second}/limited", b"limited")
        refused = registry.post(f"/v2/{alice.namespace}/app/blobs/uploads/")
        pull_elsewhere = registry.get(f"/v2/{alice.namespace}/app/manifests/v1")
        catalog = registry.get("/v2/_catalog")
    scopes = f"repository:{second}/limited:pull repository:{alice.namespace}/app:pull"
    granted = jwt_claims(bearer_token(server, auth, scopes, "registry:catalog:*"))["access"]
    with_bearer = http.get(
        "/v2/_catalog", headers=bearer(bearer_token(server, auth, "registry:catalog:*"))
    )

    assert_error(refused, 403, "DENIED")
    assert_error(pull_elsewhere, 403, "DENIED")
    assert catalog.json() == {"repositories": [f"{second}/limited"]}
    assert with_bearer.json() == catalog.json()
    assert granted == [
        {"type": "repository", "name": f"{second}/limited", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]


def test_a_pull_only_token_cannot_push(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    token = new_access_token(server, alice, "pull")
    auth = (alice.name, str(token["secret"]))
    repository = f"{alice.namespace}/app"

    pulled = http.get(f"/v2/{repository}/manifests/v1", auth=auth)
    upload = http.post(f"/v2/{repository}/blobs/uploads/", auth=auth)
    delete = http.delete(f"/v2/{repository}/manifests/v1", auth=auth)

    assert pulled.status_code == 200
    assert_error(upload, 403, "DENIED")
    assert "allow only pull" in upload.json()["errors"][0]["message"]
    assert_error(delete, 403, "DENIED")


def test_pushing_into_a_missing_or_foreign_namespace_is_refused(
    server: RunningServer, http: httpx.Client, alice: Account, bob: Account
) -> None:
    foreign = f"{alice.namespace}/from-bob"
    missing = f"{unique_name('nonesuch')}/from-bob"

    answers = [
        http.post(f"/v2/{name}/blobs/uploads/", auth=bob.registry_auth)
        for name in (foreign, missing)
    ]
    content = b"a blob bob wants to put somewhere"
    monolithic = [
        http.post(
            f"/v2/{name}/blobs/uploads/",
            params={"digest": sha256(content)},
            content=content,
            auth=bob.registry_auth,
        )
        for name in (foreign, missing)
    ]

    for first, second in [answers, monolithic]:
        assert_error(first, 403, "DENIED")
        assert_alike(first, second, (foreign, missing))
    assert foreign not in http.get("/v2/_catalog", auth=alice.registry_auth).text


def test_a_revoked_token_stops_working_at_once(
    server: RunningServer, http: httpx.Client, alice: Account
) -> None:
    token = new_access_token(server, alice, "pull")
    auth = (alice.name, str(token["secret"]))
    path = f"/v2/{alice.namespace}/app/manifests/v1"
    assert http.get(path, auth=auth).status_code == 200

    revoked = http.delete(f"{API}/tokens/{token['id']}", auth=alice.api_auth)

    assert revoked.status_code == 204
    assert_error(http.get(path, auth=auth), 401, "UNAUTHORIZED")
    assert token_response(server, auth).status_code == 401


def test_a_token_works_only_with_its_owners_name(
    server: RunningServer, http: httpx.Client, alice: Account, bob: Account
) -> None:
    token = new_access_token(server, alice, "pull")

    response = http.get("/v2/", auth=(bob.name, str(token["secret"])))

    assert_error(response, 401, "UNAUTHORIZED")


def test_a_registry_password_reset_stops_the_old_one_at_once(
    server: RunningServer, http: httpx.Client, account: Account
) -> None:
    assert http.get("/v2/", auth=account.registry_auth).status_code == 200

    reset = http.put(
        f"{API}/me/registry-password", json={"password": "the-next-password"}, auth=account.api_auth
    )

    assert reset.status_code == 200
    assert_error(http.get("/v2/", auth=account.registry_auth), 401, "UNAUTHORIZED")
    assert http.get("/v2/", auth=(account.name, "the-next-password")).status_code == 200


def test_a_registry_password_shaped_like_an_access_token_still_works(
    server: RunningServer, http: httpx.Client, account: Account
) -> None:
    password = "mrt_my_own_password"
    reset = http.put(
        f"{API}/me/registry-password", json={"password": password}, auth=account.api_auth
    )
    assert reset.status_code == 200

    response = http.get("/v2/", auth=(account.name, password))

    assert response.status_code == 200, response.text
