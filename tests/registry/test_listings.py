"""Listings over a real server: the /v2/ check, tags, the catalog, referrers."""

from __future__ import annotations

import json
import os
import re

import httpx
import pytest
from tests.conftest import RunningServer
from tests.support import (
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    sha256,
    unique_repository,
)

LINK = re.compile(r'<(?P<url>[^>]+)>; rel="next"')
TAGS = ["latest", "1.0", "1.10", "1.2", "Zeta", "alpha", "_under", "a-b", "a.b", "a_b", "b"]


def follow(client: httpx.Client, url: str, key: str) -> tuple[list[str], list[httpx.Response]]:
    """Every entry of a paginated listing, following Link headers; also each page."""
    names: list[str] = []
    pages: list[httpx.Response] = []
    next_url: str | None = url
    while next_url is not None:
        page = client.get(next_url)
        assert page.status_code == 200, page.text
        pages.append(page)
        names += page.json()[key]
        link = page.headers.get("link")
        next_url = None if link is None else LINK.fullmatch(link)["url"]  # type: ignore[index]
    return names, pages


@pytest.fixture(scope="module")
def tagged(server: RunningServer) -> str:
    """A repository with one image under every tag of TAGS, pushed out of order."""
    repository = unique_repository()
    with httpx.Client(base_url=server.url, timeout=60, auth=server.http_auth) as own:
        manifest = image_manifest(own, repository, layers=1)
        for tag in TAGS:
            assert push_manifest(own, repository, tag, manifest).status_code == 201
    return repository


def test_api_version_check(client: httpx.Client) -> None:
    response = client.get("/v2/")

    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert response.json() == {}


def test_tags_are_listed_in_lexical_order(client: httpx.Client, tagged: str) -> None:
    response = client.get(f"/v2/{tagged}/tags/list")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": tagged, "tags": sorted(TAGS)}
    assert "link" not in response.headers


@pytest.mark.parametrize("size", [1, 2, 3, 5, len(TAGS) - 1])
def test_tag_pages_of_n_link_to_the_next(client: httpx.Client, tagged: str, size: int) -> None:
    names, pages = follow(client, f"/v2/{tagged}/tags/list?n={size}", "tags")

    assert names == sorted(TAGS)
    assert all(len(page.json()["tags"]) == size for page in pages[:-1])
    first = pages[0]
    last_on_first = sorted(TAGS)[size - 1]
    assert first.headers["link"] == (
        f'</v2/{tagged}/tags/list?n={size}&last={last_on_first}>; rel="next"'
    )


def test_n_zero_is_an_empty_page_without_link(client: httpx.Client, tagged: str) -> None:
    response = client.get(f"/v2/{tagged}/tags/list", params={"n": 0})

    assert response.status_code == 200
    assert response.json() == {"name": tagged, "tags": []}
    assert "link" not in response.headers


def test_n_at_least_the_count_has_no_link(client: httpx.Client, tagged: str) -> None:
    for size in (len(TAGS), len(TAGS) + 5):
        response = client.get(f"/v2/{tagged}/tags/list", params={"n": size})
        assert response.json()["tags"] == sorted(TAGS)
        assert "link" not in response.headers


def test_last_without_n_lists_everything_after_it(client: httpx.Client, tagged: str) -> None:
    middle = sorted(TAGS)[4]

    response = client.get(f"/v2/{tagged}/tags/list", params={"last": middle})

    assert response.json()["tags"] == sorted(TAGS)[5:]
    after_all = client.get(f"/v2/{tagged}/tags/list", params={"last": "zzz"})
    assert after_all.json()["tags"] == []


def test_n_and_last_together(client: httpx.Client, tagged: str) -> None:
    response = client.get(f"/v2/{tagged}/tags/list", params={"n": 2, "last": "a-b"})

    assert response.json()["tags"] == ["a.b", "a_b"]


@pytest.mark.parametrize("size", ["abc", "-1", "1.5", "99999999999"])
def test_invalid_n_is_refused(client: httpx.Client, tagged: str, size: str) -> None:
    response = client.get(f"/v2/{tagged}/tags/list", params={"n": size})

    assert_error(response, 400, "UNSUPPORTED")


def test_repository_without_tags_lists_none(client: httpx.Client) -> None:
    repository = unique_repository()
    push_blob(client, repository, b"only a blob")

    response = client.get(f"/v2/{repository}/tags/list")

    assert response.json() == {"name": repository, "tags": []}


def test_tags_of_an_unknown_repository_is_name_unknown(client: httpx.Client) -> None:
    response = client.get(f"/v2/{unique_repository()}/tags/list")

    assert_error(response, 404, "NAME_UNKNOWN")


def test_catalog_pages_through_every_repository(client: httpx.Client) -> None:
    mine = sorted(unique_repository() for _ in range(3))
    for repository in mine:
        push_blob(client, repository, os.urandom(16))

    everything = client.get("/v2/_catalog").json()["repositories"]
    paged, pages = follow(client, "/v2/_catalog?n=2", "repositories")
    after_first = client.get("/v2/_catalog", params={"n": 1, "last": mine[0]})
    empty = client.get("/v2/_catalog", params={"n": 0})

    assert everything == sorted(everything)
    assert set(mine) <= set(everything)
    assert paged == everything
    assert all(len(page.json()["repositories"]) == 2 for page in pages[:-1])
    assert after_first.json()["repositories"] == [everything[everything.index(mine[0]) + 1]]
    assert after_first.headers["link"].startswith("</v2/_catalog?n=1&last=")
    assert empty.json() == {"repositories": []}
    assert "link" not in empty.headers


def referrer(
    client: httpx.Client, repository: str, subject: bytes, **fields: object
) -> tuple[bytes, httpx.Response]:
    """Push a manifest naming `subject`, by digest; return its bytes and the response."""
    push_blob(client, repository, b"{}")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [],
        "subject": descriptor(OCI_MANIFEST, subject),
        **fields,
    }
    content = json.dumps(document).encode()
    return content, push_manifest(client, repository, sha256(content), content)


def test_referrers_list_every_manifest_naming_the_subject(client: httpx.Client) -> None:
    repository = unique_repository()
    subject = image_manifest(client, repository)
    signature, _ = referrer(
        client,
        repository,
        subject,
        artifactType="application/vnd.example.signature",
        annotations={"org.example.kind": "signature"},
    )
    config = b'{"tool":"sbom"}'
    push_blob(client, repository, config)
    sbom, _ = referrer(
        client, repository, subject, config=descriptor("application/vnd.example.sbom", config)
    )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": "application/vnd.example.bundle",
            "manifests": [],
            "subject": descriptor(OCI_MANIFEST, subject),
            "annotations": {"org.example.kind": "bundle"},
        }
    ).encode()
    push_manifest(client, repository, sha256(index), index, OCI_INDEX)
    referrer(client, repository, b"some other subject", artifactType="application/vnd.x")
    push_manifest(client, repository, "subject", subject)

    response = client.get(f"/v2/{repository}/referrers/{sha256(subject)}")

    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    assert "oci-filters-applied" not in response.headers
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    assert sorted(body["manifests"], key=lambda entry: entry["digest"]) == sorted(
        [
            {
                **descriptor(OCI_MANIFEST, signature),
                "artifactType": "application/vnd.example.signature",
                "annotations": {"org.example.kind": "signature"},
            },
            {**descriptor(OCI_MANIFEST, sbom), "artifactType": "application/vnd.example.sbom"},
            {
                **descriptor(OCI_INDEX, index),
                "artifactType": "application/vnd.example.bundle",
                "annotations": {"org.example.kind": "bundle"},
            },
        ],
        key=lambda entry: str(entry["digest"]),
    )


def test_referrers_filtered_by_artifact_type(client: httpx.Client) -> None:
    repository = unique_repository()
    subject = image_manifest(client, repository)
    wanted, _ = referrer(client, repository, subject, artifactType="application/vnd.example.a")
    referrer(client, repository, subject, artifactType="application/vnd.example.b")

    matching = client.get(
        f"/v2/{repository}/referrers/{sha256(subject)}",
        params={"artifactType": "application/vnd.example.a"},
    )
    none = client.get(
        f"/v2/{repository}/referrers/{sha256(subject)}",
        params={"artifactType": "application/vnd.example.none"},
    )

    assert matching.headers["oci-filters-applied"] == "artifactType"
    assert [entry["digest"] for entry in matching.json()["manifests"]] == [sha256(wanted)]
    assert none.headers["oci-filters-applied"] == "artifactType"
    assert none.json()["manifests"] == []


def test_deleted_referrer_is_no_longer_listed(client: httpx.Client) -> None:
    repository = unique_repository()
    subject = image_manifest(client, repository)
    content, pushed = referrer(client, repository, subject, artifactType="application/vnd.x")
    assert pushed.headers["oci-subject"] == sha256(subject)

    client.delete(f"/v2/{repository}/manifests/{sha256(content)}")

    listed = client.get(f"/v2/{repository}/referrers/{sha256(subject)}")
    assert listed.json()["manifests"] == []


def test_referrers_stay_in_their_repository(client: httpx.Client) -> None:
    repository = unique_repository()
    subject = image_manifest(client, repository)
    referrer(client, repository, subject, artifactType="application/vnd.x")

    elsewhere = unique_repository()
    push_image(client, elsewhere, "x")
    response = client.get(f"/v2/{elsewhere}/referrers/{sha256(subject)}")

    assert response.json()["manifests"] == []


@pytest.mark.parametrize("existing", [True, False], ids=["known-repository", "new-repository"])
def test_referrers_of_an_unknown_digest_is_an_empty_index(
    client: httpx.Client, existing: bool
) -> None:
    repository = unique_repository()
    if existing:
        push_image(client, repository, "x")

    response = client.get(f"/v2/{repository}/referrers/{sha256(os.urandom(8))}")

    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_of_a_malformed_digest_is_digest_invalid(client: httpx.Client) -> None:
    response = client.get(f"/v2/{unique_repository()}/referrers/sha256:abc")

    assert_error(response, 400, "DIGEST_INVALID")
