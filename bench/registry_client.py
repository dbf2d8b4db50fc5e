"""Every HTTP exchange the benchmark has with a registry, and how it authenticates.

Authentication is settled once per server in `open_target`, which answers the server's
challenge: HTTP Basic, or a bearer token from the realm of the Docker token auth spec,
renewed before it expires. httpx clients and the load generator then send the header that
`Authorizer.header` gives. Another scheme would be one more branch there.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# The reference registry serves an OCI manifest only to clients that say they accept one.
MANIFEST_ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"

TIMEOUT_SECONDS = 120
STREAM_CHUNK_BYTES = 1024 * 1024
# A token is renewed once this share of its lifetime has passed.
TOKEN_RENEWAL_SHARE = 0.5
_CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


class BenchError(Exception):
    """The benchmark cannot go on; the message says why and what to do."""


class CredentialsNeededError(BenchError):
    """The registry wants credentials and none were given."""


@dataclass(frozen=True)
class Credentials:
    """A registry account to act as."""

    username: str
    password: str


class Authorizer:
    """The Authorization header answering one registry's challenge, renewed as needed."""

    def __init__(self, challenge: str, credentials: Credentials, scopes: list[str]) -> None:
        self._scheme, _, parameters = challenge.partition(" ")
        self._parameters = dict(_CHALLENGE_PARAMETER.findall(parameters))
        self._credentials = credentials
        self._scopes = scopes
        self._header = ""
        self._renew_at = 0.0

    def header(self) -> str:
        """The current Authorization header value."""
        if time.monotonic() >= self._renew_at:
            self._header, lifetime = self._authorization()
            self._renew_at = time.monotonic() + lifetime * TOKEN_RENEWAL_SHARE
        return self._header

    def _authorization(self) -> tuple[str, float]:
        """A header and how many seconds it stays good."""
        pair = f"{self._credentials.username}:{self._credentials.password}".encode()
        basic = "Basic " + base64.b64encode(pair).decode("ascii")
        if self._scheme.lower() == "basic":
            return basic, float("inf")
        if self._scheme.lower() == "bearer":
            return self._bearer_token(basic)
        raise BenchError(f"the benchmark cannot answer this challenge: {self._scheme!r}")

    def _bearer_token(self, basic: str) -> tuple[str, float]:
        query = [("service", self._parameters.get("service", ""))]
        query += [("scope", scope) for scope in self._scopes]
        response = httpx.get(
            self._parameters["realm"],
            params=query,
            headers={"Authorization": basic},
            timeout=TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise BenchError(
                f"the token endpoint refused {self._credentials.username!r}:"
                f" {response.status_code} {response.text[:200]}"
            )
        answer = response.json()
        token = answer.get("token") or answer["access_token"]
        return f"Bearer {token}", float(answer.get("expires_in", 60))


class _HttpxAuthorization(httpx.Auth):
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._authorizer.header()
        yield request


@dataclass(frozen=True)
class Target:
    """A running registry, and how requests to it authenticate (if they must)."""

    name: str
    url: str
    authorizer: Authorizer | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Headers every request carries: the Authorization header, if one is needed."""
        if self.authorizer is None:
            return {}
        return {"Authorization": self.authorizer.header()}

    def _auth(self) -> httpx.Auth | None:
        return None if self.authorizer is None else _HttpxAuthorization(self.authorizer)

    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        """A keep-alive HTTP client for this registry."""
        with httpx.Client(base_url=self.url, auth=self._auth(), timeout=TIMEOUT_SECONDS) as client:
            yield client

    def async_client(self, connections: int) -> httpx.AsyncClient:
        """An async client holding up to `connections` connections to this registry."""
        return httpx.AsyncClient(
            base_url=self.url,
            auth=self._auth(),
            timeout=TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=connections),
        )


def open_target(name: str, url: str, credentials: Credentials | None, scopes: list[str]) -> Target:
    """Probe `/v2/` and settle how to authenticate for `scopes`; a clear `BenchError` if not."""
    probe = httpx.get(f"{url}/v2/", timeout=TIMEOUT_SECONDS)
    if probe.status_code == 200:
        return Target(name, url)
    if probe.status_code != 401:
        raise BenchError(f"{name}: GET /v2/ answered {probe.status_code}: {probe.text[:200]}")

    challenge = probe.headers.get("www-authenticate", "")
    if credentials is None:
        raise CredentialsNeededError(
            f"{name} asks for authentication (401, WWW-Authenticate: {challenge or 'none'}):"
            " pass --username and --password, or set MOORAGE_BENCH_USERNAME and"
            " MOORAGE_BENCH_PASSWORD"
        )
    target = Target(name, url, Authorizer(challenge, credentials, scopes))
    checked = httpx.get(f"{url}/v2/", headers=target.headers, timeout=TIMEOUT_SECONDS)
    if checked.status_code != 200:
        raise BenchError(
            f"{name} refused the credentials of {credentials.username!r}:"
            f" GET /v2/ answered {checked.status_code}: {checked.text[:200]}"
        )
    return target


def sha256_digest(content: bytes) -> str:
    """The `sha256:<hex>` digest of `content`."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def expect(response: httpx.Response, status: int) -> httpx.Response:
    """The response, if it has `status`; otherwise a `BenchError` that shows what came back."""
    if response.status_code == status:
        return response
    hint = ""
    if response.status_code in (401, 403):
        hint = " (check --username/--password and the account's rights)"
    raise BenchError(
        f"{response.request.method} {response.request.url.path} answered"
        f" {response.status_code}, not {status}{hint}: {response.text[:300]}"
    )


def _with_digest(location: str, digest: str) -> httpx.URL:
    # The reference registry keeps upload state in the Location's query: add to it, keep it.
    return httpx.URL(location).copy_merge_params({"digest": digest})


def start_upload(client: httpx.Client, repository: str) -> str:
    """Open an upload session; its Location."""
    response = expect(client.post(f"/v2/{repository}/blobs/uploads/"), 202)
    return response.headers["location"]


def push_monolithic(client: httpx.Client, repository: str, content: bytes, digest: str) -> None:
    """POST a session, then PUT the whole blob with its digest."""
    location = start_upload(client, repository)
    expect(client.put(_with_digest(location, digest), content=content), 201)


def push_chunked(
    client: httpx.Client, repository: str, content: bytes, digest: str, chunk_bytes: int
) -> None:
    """POST a session, PATCH the blob a chunk at a time with Content-Range, then PUT."""
    location = start_upload(client, repository)
    view = memoryview(content)
    for start in range(0, len(content), chunk_bytes):
        chunk = view[start : start + chunk_bytes]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(chunk) - 1}",
        }
        response = expect(client.patch(location, content=bytes(chunk), headers=headers), 202)
        location = response.headers["location"]
    expect(client.put(_with_digest(location, digest)), 201)


class BlobReader:
    """Pulls blobs over one keep-alive connection into one reused buffer.

    httpx reads 64 KiB at a time and copies each piece through its parser, which at several
    hundred MB/s makes the client the bottleneck; `http.client.readinto` fills a 1 MiB buffer
    straight from the socket.

    A 307 (a registry that lets its storage serve blobs) is followed without the registry's
    Authorization header, over a keep-alive connection of its own to the storage.
    """

    def __init__(self, target: Target) -> None:
        url = httpx.URL(target.url)
        self._target = target
        self._connection = _connect(url.host, url.port)
        self._elsewhere: dict[str, http.client.HTTPConnection] = {}
        self._buffer = memoryview(bytearray(STREAM_CHUNK_BYTES))

    def pull(self, repository: str, digest: str) -> int:
        """GET a blob, dropping its bytes as they come; how many came."""
        path = f"/v2/{repository}/blobs/{digest}"
        self._connection.request("GET", path, headers=self._target.headers)
        response = self._connection.getresponse()
        if response.status == 307:
            response.read()
            response = self._follow(response.getheader("location", ""))
        if response.status != 200:
            raise BenchError(f"GET blob {digest} answered {response.status}: {response.read()!r}")
        received = 0
        while count := response.readinto(self._buffer):
            received += count
        return received

    def _follow(self, location: str) -> http.client.HTTPResponse:
        url = httpx.URL(location)
        if url.scheme != "http" or url.host is None:
            raise BenchError(f"the benchmark cannot follow a redirect to {location!r}")
        netloc = f"{url.host}:{url.port}"
        connection = self._elsewhere.get(netloc)
        if connection is None:
            connection = self._elsewhere[netloc] = _connect(url.host, url.port)
        connection.request("GET", url.raw_path.decode("ascii"))
        return connection.getresponse()

    def close(self) -> None:
        self._connection.close()
        for connection in self._elsewhere.values():
            connection.close()


def _connect(host: str, port: int | None) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)


def fetch_blob(client: httpx.Client, repository: str, digest: str) -> bytes:
    """GET a whole blob into memory (to check it, outside the timed part), following a 307."""
    # httpx drops the Authorization header when a redirect leaves the registry's origin.
    response = client.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
    return expect(response, 200).content


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    """An OCI image manifest naming `config` and `layers`."""

    def descriptor(media_type: str, content: bytes) -> str:
        return (
            f'{{"mediaType": "{media_type}", "digest": "{sha256_digest(content)}",'
            f' "size": {len(content)}}}'
        )

    layer_list = ", ".join(descriptor(OCI_LAYER, layer) for layer in layers)
    return (
        f'{{"schemaVersion": 2, "mediaType": "{OCI_MANIFEST}",'
        f' "config": {descriptor(OCI_CONFIG, config)}, "layers": [{layer_list}]}}'
    ).encode()


def manifest_path(repository: str, reference: str) -> str:
    """The path of a manifest by tag or digest."""
    return f"/v2/{repository}/manifests/{reference}"


def put_manifest(client: httpx.Client, repository: str, reference: str, manifest: bytes) -> str:
    """PUT a manifest under a tag; its digest as the server reports it."""
    response = client.put(
        manifest_path(repository, reference),
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    return expect(response, 201).headers["docker-content-digest"]


async def put_manifest_async(
    client: httpx.AsyncClient, repository: str, reference: str, manifest: bytes
) -> None:
    """PUT a manifest under a tag, from async code."""
    response = await client.put(
        manifest_path(repository, reference),
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    expect(response, 201)


def get_manifest(client: httpx.Client, repository: str, reference: str) -> httpx.Response:
    """GET a manifest, accepting the OCI and Docker image manifest types."""
    response = client.get(manifest_path(repository, reference), headers={"Accept": MANIFEST_ACCEPT})
    return expect(response, 200)


def list_tags(client: httpx.Client, repository: str) -> list[str]:
    """Every tag of a repository, in one unpaginated request."""
    response = expect(client.get(f"/v2/{repository}/tags/list"), 200)
    tags: list[str] = response.json()["tags"]
    return tags
