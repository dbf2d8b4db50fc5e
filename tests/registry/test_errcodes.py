"""The error table and envelope: unit checks, then what a real server answers to bad requests."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.support import (
    SPEC_ERROR_CODES,
    assert_error,
    push_image,
    sha256,
    start_upload,
    unique_repository,
)

from moorage import errors
from moorage.registry.errcodes import error_body, error_code_for, error_response

# What the /v2 API raises, with the code and status distribution answers for the same case.
REGISTRY_ERRORS: list[tuple[type[errors.MoorageError], str, int]] = [
    (errors.NameInvalidError, "NAME_INVALID", 400),
    (errors.ReferenceInvalidError, "MANIFEST_INVALID", 400),
    (errors.DigestInvalidError, "DIGEST_INVALID", 400),
    (errors.SizeInvalidError, "SIZE_INVALID", 400),
    (errors.ManifestInvalidError, "MANIFEST_INVALID", 400),
    (errors.ManifestTooLargeError, "MANIFEST_INVALID", 413),
    (errors.UploadInvalidError, "BLOB_UPLOAD_INVALID", 400),
    (errors.RangeInvalidError, "BLOB_UPLOAD_INVALID", 416),
    (errors.UnsupportedError, "UNSUPPORTED", 415),
    (errors.InvalidInputError, "UNSUPPORTED", 400),
    (errors.NameUnknownError, "NAME_UNKNOWN", 404),
    (errors.BlobUnknownError, "BLOB_UNKNOWN", 404),
    (errors.ManifestUnknownError, "MANIFEST_UNKNOWN", 404),
    (errors.ManifestBlobUnknownError, "MANIFEST_BLOB_UNKNOWN", 400),
    (errors.UploadUnknownError, "BLOB_UPLOAD_UNKNOWN", 404),
    (errors.DeniedError, "DENIED", 403),
    (errors.AccessError, "DENIED", 403),
]


@pytest.mark.parametrize(("cls", "code", "status"), REGISTRY_ERRORS)
def test_registry_errors_map_to_spec_codes(
    cls: type[errors.MoorageError], code: str, status: int
) -> None:
    mapped = error_code_for(cls("message"))

    assert (mapped.code, mapped.status) == (code, status)
    assert mapped.code in SPEC_ERROR_CODES


def test_a_subclass_takes_the_code_of_its_nearest_mapped_class() -> None:
    class ChunkTooEarlyError(errors.RangeInvalidError):
        pass

    assert error_code_for(ChunkTooEarlyError("early")).status == 416


def test_error_body_is_the_spec_envelope() -> None:
    code = error_code_for(errors.BlobUnknownError("x"))

    plain = json.loads(error_body(code))
    detailed = json.loads(error_body(code, "blob sha256:1 is gone", {"digest": "sha256:1"}))

    assert plain == {"errors": [{"code": "BLOB_UNKNOWN", "message": code.message}]}
    assert detailed == {
        "errors": [
            {
                "code": "BLOB_UNKNOWN",
                "message": "blob sha256:1 is gone",
                "detail": {"digest": "sha256:1"},
            }
        ]
    }


def test_error_response_adds_the_challenge_and_retry_after() -> None:
    unauthorized = error_response(errors.UnauthorizedError("who?", 'Basic realm="moorage"'))
    limited = error_response(errors.TooManyRequestsError("slow down", retry_after=30))

    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == 'Basic realm="moorage"'
    assert unauthorized.headers["content-type"] == "application/json"
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "30"


def test_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    for path in ("/v2/a/b/nothing-here", "/v3/", "/v2/a/blobs"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] in SPEC_ERROR_CODES


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v2/"),
        ("POST", "/v2/test/x/manifests/latest"),
        ("PATCH", "/v2/test/x/tags/list"),
        ("GET", "/v2/test/x/blobs/uploads/"),
    ],
)
def test_wrong_method_is_a_json_405(client: httpx.Client, method: str, path: str) -> None:
    assert_error(client.request(method, path), 405, "UNSUPPORTED")


INVALID_NAMES = [
    "Upper/case",
    "a//b",
    "a/b/",
    "-a/b",
    "a/-b",
    "a..b/c",
    "a/" + "b" * 254,
    "a/b%20c",
]


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/{name}/tags/list"),
        ("GET", "/v2/{name}/manifests/latest"),
        ("PUT", "/v2/{name}/manifests/latest"),
        ("DELETE", "/v2/{name}/manifests/latest"),
        ("GET", "/v2/{name}/blobs/" + sha256(b"")),
        ("POST", "/v2/{name}/blobs/uploads/"),
        ("PATCH", "/v2/{name}/blobs/uploads/some-id"),
        ("GET", "/v2/{name}/referrers/" + sha256(b"")),
    ],
)
def test_invalid_names_are_name_invalid(
    client: httpx.Client, name: str, method: str, path: str
) -> None:
    response = client.request(method, path.format(name=name), content=b"")

    assert_error(response, 400, "NAME_INVALID")


def test_odd_requests_never_get_a_500(client: httpx.Client) -> None:
    repository = unique_repository()
    push_image(client, repository, "latest")
    location = start_upload(client, repository)
    odd_requests: list[tuple[str, str, dict[str, object]]] = [
        ("GET", f"/v2/{repository}/manifests/sha256:totallywrong", {"content": b"blablabla"}),
        ("GET", f"/v2/{repository}/manifests/sha999:{'0' * 64}", {}),
        ("GET", f"/v2/{repository}/blobs/sha256:{'A' * 64}", {}),
        ("GET", f"/v2/{repository}/blobs/{sha256(b'')}", {"headers": {"Range": "bytes=a-b"}}),
        ("GET", f"/v2/{repository}/blobs/{sha256(b'')}", {"headers": {"Range": "bytes=0-1,3-4"}}),
        ("GET", f"/v2/{repository}/tags/list?n=&last=", {}),
        ("GET", f"/v2/{repository}/referrers/{sha256(b'')}?artifactType=", {}),
        (
            "PATCH",
            location,
            {"content": b"x", "headers": {"Content-Range": "0-99999999999999999999"}},
        ),
        ("PUT", location, {"params": {"digest": "sha256:" + "f" * 64}, "content": b"\x00" * 10}),
        ("PUT", f"{location}?digest=a&digest=b", {}),
        ("POST", f"/v2/{repository}/blobs/uploads/?mount=&from=", {}),
        ("POST", f"/v2/{repository}/blobs/uploads/?digest=", {"content": b"x"}),
        ("PUT", f"/v2/{repository}/manifests/latest", {"content": b"null"}),
        ("PUT", f"/v2/{repository}/manifests/latest", {"content": b'{"schemaVersion":2}'}),
        (
            "PUT",
            f"/v2/{repository}/manifests/latest",
            {"content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}},
        ),
        ("DELETE", f"/v2/{repository}/manifests/..", {}),
        ("DELETE", f"/v2/{repository}/blobs/not-a-digest", {}),
    ]

    for method, url, extra in odd_requests:
        response = client.request(method, url, **extra)  # type: ignore[arg-type]
        assert response.status_code < 500, (method, url, response.text)
        if response.status_code >= 400:
            assert response.json()["errors"][0]["code"] in SPEC_ERROR_CODES, (method, url)


def test_requests_without_credentials_get_the_unauthorized_envelope(
    client: httpx.Client,
) -> None:
    if client.auth is None:
        pytest.skip("the registry runs without accounts")
    with httpx.Client(base_url=str(client.base_url), timeout=30) as anonymous:
        response = anonymous.get(f"/v2/{unique_repository()}/tags/list")

    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"]
