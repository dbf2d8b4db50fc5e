"""Helpers for build tests: rules and runs through the API, and what a built image holds."""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import RunningServer
from tests.e2e.clients import Skopeo
from tests.e2e.layout import OciLayout

BUILD_TIMEOUT_SECONDS = 240


def unique_target(prefix: str = "built") -> str:
    """A repository in the test namespace that no other test builds into."""
    return f"test/{prefix}/{uuid.uuid4().hex[:10]}"


def create_rule(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A new rule; fields as the API takes them."""
    fields.setdefault("repository", unique_target())
    created = api.post("/builds/rules", json=fields)
    assert created.status_code == 201, created.text
    rule: dict[str, Any] = created.json()
    return rule


def wait_build(api: httpx.Client, build_id: str) -> dict[str, Any]:
    """The build once it has finished, waited for on its live log: one request, not a poll."""
    follow = {"follow": "true"}
    timeout = httpx.Timeout(10, read=BUILD_TIMEOUT_SECONDS)
    with api.stream("GET", f"/builds/{build_id}/logs", params=follow, timeout=timeout) as stream:
        for _line in stream.iter_lines():
            pass
    build: dict[str, Any] = api.get(f"/builds/{build_id}").json()
    assert build["state"] not in ("queued", "running"), build
    return build


def run_build(api: httpx.Client, rule_id: str, ref: str | None = None) -> dict[str, Any]:
    """Run a rule and wait for the end of the build."""
    started = api.post(f"/builds/rules/{rule_id}/runs", json={"ref": ref})
    assert started.status_code == 202, started.text
    return wait_build(api, started.json()["id"])


def succeeded(api: httpx.Client, rule_id: str, ref: str | None = None) -> dict[str, Any]:
    """Run a rule; the build, which must have succeeded."""
    build = run_build(api, rule_id, ref)
    assert build["state"] == "succeeded", f"{build}\n{log_text(api, build['id'])}"
    return build


def log_text(api: httpx.Client, build_id: str) -> str:
    """The whole stored log of a build."""
    lines = api.get(f"/builds/{build_id}/logs").json()["lines"]
    return "\n".join(line["line"] for line in lines)


@dataclass
class PulledImage:
    """An image pulled with skopeo: its manifest digest, config, files and raw layers."""

    digest: str
    config: dict[str, Any]
    files: dict[str, bytes]
    layers: list[bytes]


def pull(skopeo: Skopeo, server: RunningServer, image: str, directory: Path) -> PulledImage:
    """Copy `image` (repository:tag) from the server into an OCI layout and read it."""
    tag = image.rpartition(":")[2]
    skopeo.copy(f"docker://{server.host}/{image}", f"oci:{directory}:{tag}")
    layout = OciLayout(directory)
    digest = str(layout.tagged(tag)["digest"])
    manifest = json.loads(layout.blob(digest))
    layers = [layout.blob(layer["digest"]) for layer in manifest["layers"]]
    return PulledImage(
        digest=digest,
        config=json.loads(layout.blob(manifest["config"]["digest"])),
        files=layout.files(digest),
        layers=[gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer for layer in layers],
    )
