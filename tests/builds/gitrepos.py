"""Real git repositories for build tests, and a loopback HTTP git server (`git http-backend`).

The server is a small CGI host in a thread: each request runs git's own http-backend, so
clones go through git's smart HTTP protocol exactly as against a hosted forge. It can demand
HTTP Basic credentials, to test private repositories.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Build Test",
    "GIT_AUTHOR_EMAIL": "build-test@example.com",
    "GIT_COMMITTER_NAME": "Build Test",
    "GIT_COMMITTER_EMAIL": "build-test@example.com",
}


def git(directory: Path, *arguments: str) -> str:
    """Run git in `directory`; its stdout, stripped."""
    completed = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
        check=False,
    )
    assert completed.returncode == 0, f"git {arguments}: {completed.stderr}"
    return completed.stdout.strip()


def write_files(directory: Path, files: dict[str, str | bytes]) -> None:
    """Write `files` (relative path to content) under `directory`."""
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def commit(directory: Path, files: dict[str, str | bytes], message: str = "change") -> str:
    """Write `files`, commit everything; the new commit's id."""
    write_files(directory, files)
    git(directory, "add", "-A")
    git(directory, "commit", "-q", "-m", message)
    return git(directory, "rev-parse", "HEAD")


def new_repository(directory: Path, files: dict[str, str | bytes]) -> Path:
    """A repository on branch `main` with one commit of `files`."""
    directory.mkdir(parents=True)
    git(directory, "init", "-q", "-b", "main")
    commit(directory, files, "first")
    return directory


class _Handler(BaseHTTPRequestHandler):
    server: GitHttpServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        environment = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "tester",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        completed = subprocess.run(
            [HTTP_BACKEND], input=body, capture_output=True, env=environment, check=False
        )
        head, _, payload = completed.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _authorized(self) -> bool:
        if self.server.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.server.credentials).encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"


class GitHttpServer(ThreadingHTTPServer):
    """Serves every repository under `root` over smart HTTP on a loopback port."""

    daemon_threads = True

    def __init__(self, root: Path, credentials: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.credentials = credentials

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(root: Path, credentials: tuple[str, str] | None = None) -> Iterator[GitHttpServer]:
    """A running `GitHttpServer` for the `with` block."""
    server = GitHttpServer(root, credentials)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
