"""A browser stand-in for console tests: cookies, CSRF tokens read from the pages, forms."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tests.conftest import RunningServer

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
FIELD_ERROR = re.compile(r'<p class="field-error" id="error-([a-z_]+)">([^<]*)</p>')
FORM_ERROR = re.compile(r'<p class="form-error" role="alert">([^<]*)</p>')


class ConsoleClient:
    """An HTTP client that keeps the session cookie and sends forms the way a page does."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=60, verify=False)

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        """GET a page without following redirects."""
        return self.http.get(path, **kwargs)  # type: ignore[arg-type]

    def csrf_token(self) -> str:
        """The CSRF token in the forms of this session's pages."""
        page = self.http.get("/account")
        if page.status_code == 303:
            page = self.http.get("/sign-in")
        found = CSRF_INPUT.search(page.text)
        assert found is not None, f"no CSRF token on {page.url}: {page.status_code}"
        return found.group(1)

    def submit(self, path: str, fields: dict[str, str] | None = None) -> httpx.Response:
        """POST a form to `path` with the CSRF token the pages of this session show."""
        token = self.csrf_token()
        return self.http.post(path, data={"csrf_token": token, **(fields or {})})

    def sign_in(self, name: str, password: str) -> None:
        """Sign in through the form; fail the test if it does not work."""
        response = self.submit("/sign-in", {"name": name, "password": password})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/"


def field_errors(response: httpx.Response) -> dict[str, str]:
    """The messages shown beside fields, by field name."""
    return {name: html.unescape(text) for name, text in FIELD_ERROR.findall(response.text)}


def form_error(response: httpx.Response) -> str | None:
    """The message shown above a form, if any."""
    found = FORM_ERROR.search(response.text)
    return html.unescape(found.group(1)) if found else None


def token_response(server: RunningServer, auth: tuple[str, str]) -> httpx.Response:
    """What the token endpoint answers `docker login` with these credentials."""
    return httpx.get(
        f"{server.url}/auth/token", params={"service": "moorage"}, auth=auth, timeout=60
    )


@contextmanager
def running_server(tmp_path: Path, settings: dict[str, str]) -> Iterator[RunningServer]:
    """A server of the test's own with `settings` (MOORAGE_* variables); no traceback logged."""
    from tests.conftest import RunningServer

    running = RunningServer(tmp_path / "data", env=settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"
