"""Builds from real git repositories by the server's own worker (buildah), pulled with skopeo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from tests.builds.buildsupport import (
    create_rule,
    log_text,
    pull,
    succeeded,
    unique_target,
    wait_build,
)
from tests.builds.gitrepos import commit, git, new_repository, serving
from tests.conftest import RunningServer
from tests.e2e.clients import Skopeo

HELLO = "hello from a committed file\n"


def test_default_paths_from_a_file_url_with_the_cli(
    build_server: RunningServer, api: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = new_repository(
        tmp_path / "repo",
        {
            "Dockerfile": 'FROM scratch\nCOPY hello.txt /hello.txt\nLABEL built.by="moorage"\n',
            "hello.txt": HELLO,
        },
    )
    target = unique_target()

    created = build_server.cli("build", "rule", "create", target, "--git", f"file://{repo}")
    assert created.returncode != 0, "--ref is required"
    created = build_server.cli(
        "build", "rule", "create", target, "--git", f"file://{repo}", "--ref", "main"
    )
    assert created.returncode == 0, created.stderr
    rule_id = created.stdout.strip()
    ran = build_server.cli("build", "run", rule_id, "--wait")

    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.strip().splitlines()
    build_id, state = lines[0], lines[-1]
    assert state == "succeeded"
    build = api.get(f"/builds/{build_id}").json()
    assert build["rule_id"] == rule_id
    assert build["resolved_ref"] == "refs/heads/main"
    assert build["commit"] == git(repo, "rev-parse", "HEAD")
    assert build["image"] == f"{target}:main"
    assert build["duration_seconds"] > 0 and build["reason"] is None
    image = pull(skopeo, build_server, f"{target}:main", tmp_path / "pulled")
    assert image.digest == build["image_digest"]
    assert image.files == {"hello.txt": HELLO.encode()}
    assert image.config["config"]["Labels"]["built.by"] == "moorage"
    logs = build_server.cli("build", "logs", build_id)
    assert "STEP 2/3: COPY hello.txt /hello.txt" in logs.stdout
    assert all(line[:4].isdigit() and "T" in line.split()[0] for line in logs.stdout.splitlines())


def test_a_dockerfile_in_a_subfolder_with_another_build_dir_over_http(
    build_server: RunningServer, api: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    new_repository(
        tmp_path / "served" / "web",
        {
            "docker/Dockerfile": "FROM scratch\nCOPY static/index.html /srv/index.html\n",
            "app/static/index.html": "<h1>app</h1>",
            "static/index.html": "<h1>the root copy, not this</h1>",
        },
    )

    with serving(tmp_path / "served") as http:
        rule = create_rule(
            api,
            git_url=f"{http.url}/web",
            ref="main",
            dockerfile="docker/Dockerfile",
            build_dir="app/",
        )
        build = succeeded(api, rule["id"])

    assert rule["build_dir"] == "app" and rule["dockerfile"] == "docker/Dockerfile"
    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert image.files == {"srv/index.html": b"<h1>app</h1>"}


def test_a_tag_pattern_a_template_and_a_pinned_submodule(
    build_server: RunningServer, api: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    library = new_repository(tmp_path / "library", {"version.txt": "library one"})
    pinned = git(library, "rev-parse", "HEAD")
    commit(library, {"version.txt": "library two"})
    app = new_repository(
        tmp_path / "app", {"Dockerfile": "FROM scratch\nCOPY lib/version.txt /version.txt\n"}
    )
    git(app, "submodule", "add", "-q", f"file://{library}", "lib")
    git(app / "lib", "checkout", "-q", pinned)
    tagged = commit(app, {}, "pin the library")
    git(app, "tag", "v1.0")
    git(app / "lib", "checkout", "-q", "main")
    commit(app, {}, "move the library on")

    rule = create_rule(api, git_url=f"file://{app}", ref="v*", tag_template="{tag}-{short_commit}")
    build = succeeded(api, rule["id"])

    assert build["resolved_ref"] == "refs/tags/v1.0"
    assert build["commit"] == tagged
    assert build["image"].endswith(f":v1.0-{tagged[:12]}")
    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert image.files == {"version.txt": b"library one"}


def test_a_run_on_another_branch(
    build_server: RunningServer, api: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = new_repository(
        tmp_path / "repo", {"Dockerfile": "FROM scratch\nCOPY which /which\n", "which": "main"}
    )
    git(repo, "checkout", "-q", "-b", "feature/login")
    feature = commit(repo, {"which": "feature"})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")

    build = succeeded(api, rule["id"], ref="feature/login")

    assert build["image"] == f"{rule['repository']}:feature-login"
    assert build["commit"] == feature
    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert image.files == {"which": b"feature"}


def test_build_arguments_on_a_base_image_stored_in_moorage(
    build_server: RunningServer,
    api: httpx.Client,
    skopeo: Skopeo,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    dockerfile = (
        f"FROM {busybox_image}\n"
        "ARG GREETING=unset\nARG UNUSED_DEFAULT=kept\n"
        'RUN echo "$GREETING/$UNUSED_DEFAULT" > /greeting\n'
    )
    repo = new_repository(tmp_path / "repo", {"Dockerfile": dockerfile})
    rule = create_rule(
        api, git_url=f"file://{repo}", ref="main", build_args={"GREETING": "hello builder"}
    )

    build = succeeded(api, rule["id"])

    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert image.files["greeting"] == b"hello builder/kept\n"
    assert "bin/busybox" in image.files


def test_a_dockerignore_keeps_a_secret_out_of_every_layer(
    build_server: RunningServer,
    api: httpx.Client,
    skopeo: Skopeo,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    secret = "AKIA-this-must-never-ship"
    repo = new_repository(
        tmp_path / "repo",
        {
            "Dockerfile": f"FROM {busybox_image}\nCOPY . /app\nRUN ls -la /app > /listing\n",
            ".dockerignore": "secret.env\n**/*.pem\n",
            "secret.env": f"TOKEN={secret}",
            "certs/server.pem": secret,
            "keep.txt": "shipped",
        },
    )
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")

    build = succeeded(api, rule["id"])

    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert image.files["app/keep.txt"] == b"shipped"
    assert "app/secret.env" not in image.files
    assert not any(secret.encode() in layer for layer in image.layers)
    assert b"secret.env" not in image.files["listing"]
    assert not any(name.startswith("app/.git") for name in image.files)


def test_a_multi_stage_build_keeps_only_the_last_stage(
    build_server: RunningServer,
    api: httpx.Client,
    skopeo: Skopeo,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    dockerfile = (
        f"FROM {busybox_image} AS compile\n"
        "COPY src.txt /src.txt\n"
        "RUN tr a-z A-Z < /src.txt > /program\n"
        "FROM scratch\n"
        "COPY --from=compile /program /program\n"
    )
    repo = new_repository(tmp_path / "repo", {"Dockerfile": dockerfile, "src.txt": "compiled"})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")

    build = succeeded(api, rule["id"])

    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert image.files == {"program": b"COMPILED"}


def test_live_logs_stream_while_the_build_runs(
    build_server: RunningServer, api: httpx.Client, busybox_image: str, tmp_path: Path
) -> None:
    dockerfile = f"FROM {busybox_image}\nRUN echo first-marker && sleep 3 && echo last-marker\n"
    repo = new_repository(tmp_path / "repo", {"Dockerfile": dockerfile})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")
    build_id = api.post(f"/builds/rules/{rule['id']}/runs").json()["id"]
    seen: dict[str, float] = {}
    events: list[dict[str, str]] = []

    with api.stream("GET", f"/builds/{build_id}/logs", params={"follow": "true"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for raw in stream.iter_lines():
            if raw.startswith("data: "):
                event = json.loads(raw.removeprefix("data: "))
                events.append(event)
                for marker in ("first-marker", "last-marker"):
                    if event.get("line", "").strip() == marker:
                        seen.setdefault(marker, time.monotonic())

    assert events[-1] == {"state": "succeeded"}
    assert seen["last-marker"] - seen["first-marker"] > 2, "lines arrive as they are printed"
    assert wait_build(api, build_id)["state"] == "succeeded"


@pytest.mark.timeout(600)
def test_a_real_debian_base_with_apt_get_install(
    build_server: RunningServer,
    api: httpx.Client,
    skopeo: Skopeo,
    debian_image: str,
    tmp_path: Path,
) -> None:
    dockerfile = (
        f"FROM {debian_image}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends hello"
        " && rm -rf /var/lib/apt/lists/*\n"
        'CMD ["hello"]\n'
    )
    repo = new_repository(tmp_path / "repo", {"Dockerfile": dockerfile})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")

    build = succeeded(api, rule["id"])

    image = pull(skopeo, build_server, build["image"], tmp_path / "pulled")
    assert "usr/bin/hello" in image.files
    assert "etc/debian_version" in image.files
    assert image.config["config"]["Cmd"] == ["hello"]
    assert "Setting up hello" in log_text(api, build["id"])
