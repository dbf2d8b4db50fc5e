"""The console in Debian's Chromium, headless, driven by Playwright, against a real server.

One journey goes through what a new user does: sign in, activate, make a namespace, push
with skopeo, find the tag, copy its pull command, delete and restore the tag, ask for more
quota (an administrator approves it), and build an image from git, watching its log. Every
main page is saved as a screenshot, at desktop and phone width, under
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from tests.builds.gitrepos import new_repository
from tests.conftest import RunningServer
from tests.e2e.clients import Skopeo
from tests.e2e.layout import OciLayout, random_image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
ADMIN = ("root", "root-account-password")
# Playwright's default of 30 s is short for a build's first run on a busy machine.
BUILD_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of this module's own: an admin from the settings, builds from file:// URLs."""
    environment = {
        "MOORAGE_ADMIN_USER": ADMIN[0],
        "MOORAGE_ADMIN_PASSWORD": ADMIN[1],
        "MOORAGE_BUILDS__ALLOW_FILE_URLS": "true",
        "MOORAGE_BUILDS__POLL_SECONDS": "0.2",
    }
    running = RunningServer(tmp_path_factory.mktemp("console") / "data", env=environment)
    running.start()
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, with nothing that reaches out to the network."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_context(
    browser: Browser, server: RunningServer, viewport: dict[str, int]
) -> BrowserContext:
    """A fresh browser profile on the server, allowed to use the clipboard."""
    context = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    # Answer "OK" to the console's confirmation questions (revoke, delete).
    context.on("page", lambda page: page.on("dialog", lambda dialog: dialog.accept()))
    return context


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, name: str, password: str) -> None:
    """Sign in through the form and land on the namespaces."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    page.get_by_label("Account name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Namespaces", exact=True)).to_be_visible()


def push_with_skopeo(server: RunningServer, home: Path, repository: str, tag: str) -> str:
    """Push a small random image with skopeo as the server's user; its manifest digest."""
    image = random_image(layers=2)
    layout = OciLayout(home / "layout").create()
    layout.add_image(image, tag)
    Skopeo(server, home / "skopeo").copy(
        f"oci:{layout.path}:{tag}", f"docker://{server.host}/{repository}:{tag}"
    )
    return image.digest


def test_a_new_user_goes_from_sign_in_to_a_built_image(
    console_server: RunningServer, browser: Browser, tmp_path: Path
) -> None:
    user, password = f"alice{uuid.uuid4().hex[:6]}", "alice-account-password"
    created = console_server.cli("user", "create", user, stdin=f"{password}\n")
    assert created.returncode == 0, created.stderr
    namespace, registry_password = f"team{uuid.uuid4().hex[:6]}", "alice-registry-password"
    context = open_context(browser, console_server, DESKTOP)
    page = context.new_page()

    # Sign in; the registry is not active yet.
    sign_in(page, user, password)
    expect(page.get_by_text("Registry access is not active yet")).to_be_visible()

    # Activate, and see the exact login commands.
    page.get_by_role("link", name="set a registry password").click()
    page.get_by_label("Registry password", exact=True).fill(registry_password)
    page.get_by_label("Registry password again").fill(registry_password)
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("status")).to_have_text("Your registry password is set.")
    login = f"podman login --tls-verify=false {console_server.host} -u {user}"
    expect(page.locator(".command code", has_text=login)).to_be_visible()
    screenshot(page, "registry-password-desktop")

    # A namespace: a bad name is explained beside the field, then a good one is made.
    page.get_by_role("link", name="Repositories", exact=True).click()
    page.get_by_label("Name", exact=True).fill("No Way!")
    page.get_by_role("button", name="Create namespace").click()
    expect(page.locator("#error-name")).to_contain_text("Namespace names use lower-case")
    page.get_by_label("Name", exact=True).fill(namespace)
    page.get_by_role("button", name="Create namespace").click()
    expect(page.get_by_role("heading", name=namespace, exact=True)).to_be_visible()

    # Push with skopeo, as the user with the registry password just set.
    console_server.username, console_server.password = user, registry_password
    repository = f"{namespace}/web"
    digest = push_with_skopeo(console_server, tmp_path, repository, "v1")

    # Find the tag and copy its pull command.
    page.goto(f"/namespaces/{namespace}")
    page.get_by_placeholder("Search repositories by name").fill("web")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=repository, exact=True).click()
    row = page.locator('tr[data-tag="v1"]')
    expect(row).to_contain_text(digest[:19])
    expect(row).to_contain_text("linux/amd64")
    screenshot(page, "repository-desktop")
    row.get_by_role("button", name="Copy pull command").click()
    expect(row.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"docker pull {console_server.host}/{repository}:v1"

    # Delete the tag, then restore it from the deleted items.
    row.get_by_role("button", name="Delete tag v1").click()
    expect(page.get_by_role("status")).to_contain_text("Tag v1 is deleted.")
    expect(page.locator('tr[data-tag="v1"]')).to_have_count(0)
    page.goto(f"/namespaces/{namespace}/deleted")
    deleted = page.locator(f'tr[data-item="{repository}:v1"]')
    screenshot(page, "deleted-items-desktop")
    deleted.get_by_role("button", name="Restore").click()
    expect(page.get_by_role("status")).to_have_text(f"{repository}:v1 is restored.")
    expect(page.locator('tr[data-tag="v1"]')).to_contain_text(digest[:19])

    # The repository deletion page: what goes, the backup to download, the name to type.
    page.get_by_role("link", name="Delete repository").click()
    expect(page.get_by_text("All 1 tag of this repository go with it.")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="download a backup").click()
    backup = Path(download.value.path())
    with tarfile.open(backup) as archive:
        assert "index.json" in archive.getnames()
    expect(page.get_by_role("button", name="Delete this repository")).to_be_disabled()
    page.get_by_label(f"Type {repository} to confirm").fill(repository)
    expect(page.get_by_role("button", name="Delete this repository")).to_be_enabled()
    screenshot(page, "delete-repository-desktop")

    # Ask for more quota; a bad number is explained and nothing is sent.
    page.get_by_role("link", name="Quota", exact=True).click()
    page.get_by_label("Repositories").fill("-5")
    page.get_by_label("Reason").fill("more services")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#error-repositories")).to_be_visible()
    expect(page.get_by_text("You have not asked for more yet.")).to_be_visible()
    page.get_by_label("Repositories").fill("800")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".request-list .badge-pending")).to_be_visible()
    screenshot(page, "quota-desktop")

    # An administrator approves it.
    admin_context = open_context(browser, console_server, DESKTOP)
    admin_page = admin_context.new_page()
    sign_in(admin_page, *ADMIN)
    admin_page.get_by_role("link", name="Admin", exact=True).click()
    admin_page.get_by_role("link", name="Quota requests", exact=True).click()
    request_card = admin_page.locator("article.request-card", has_text=user)
    expect(request_card).to_contain_text("Repositories: 800")
    screenshot(admin_page, "admin-quota-requests-desktop")
    request_card.get_by_placeholder(f"Comment for {user} (optional)").fill("go ahead")
    request_card.get_by_role("button", name="Approve").click()
    expect(admin_page.get_by_role("status")).to_have_text(f"The request of {user} is approved.")
    admin_page.get_by_role("link", name="Users", exact=True).click()
    screenshot(admin_page, "admin-users-desktop")
    admin_context.close()
    page.reload()
    expect(page.locator(".request-list .badge-approved")).to_be_visible()
    expect(page.locator(".stat", has_text="Repositories")).to_contain_text("of 800")

    # A build rule for a git repository, with the defaults shown; run it, watch the log.
    source = new_repository(
        tmp_path / "source",
        {"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hello\n"},
    )
    page.get_by_role("link", name="Builds", exact=True).click()
    page.get_by_role("link", name="New build rule").click()
    expect(page.get_by_label("Dockerfile")).to_have_value("Dockerfile")
    expect(page.get_by_label("Build directory")).to_have_value("./")
    page.get_by_label("Repository to push to").fill(f"{namespace}/built")
    page.get_by_label("Git repository URL").fill(f"file://{source}")
    page.get_by_label("Branch or tag").fill("main")
    screenshot(page, "build-rule-new-desktop")
    page.get_by_role("button", name="Create build rule").click()
    expect(page.get_by_role("heading", name=f"{namespace}/built", exact=True)).to_be_visible()
    expect(page.locator(".command code", has_text="/api/v1/hooks/builds/")).to_be_visible()
    page.get_by_role("button", name="Copy secret").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert len(page.evaluate("navigator.clipboard.readText()")) >= 32
    screenshot(page, "build-rule-desktop")
    page.get_by_role("button", name="Run build").click()
    expect(page.locator("#build-log")).to_be_visible()
    expect(page.locator("[data-build-state]")).to_have_text("succeeded", timeout=BUILD_TIMEOUT_MS)
    expect(page.locator("#build-log")).not_to_be_empty()
    expect(page.locator(".facts")).to_contain_text("/built:main")
    screenshot(page, "build-log-desktop")
    page.get_by_role("link", name="Builds", exact=True).first.click()
    expect(page.locator("tr[data-build] .badge-succeeded")).to_have_count(1)
    screenshot(page, "builds-desktop")

    # The main pages at phone width.
    phone = open_context(browser, console_server, PHONE).new_page()
    sign_in(phone, user, password)
    for path, name in [
        ("/namespaces", "namespaces"),
        (f"/repositories/{repository}", "repository"),
        ("/tokens", "tokens"),
        ("/quota", "quota"),
        ("/builds", "builds"),
    ]:
        phone.goto(path)
        screenshot(phone, f"{name}-phone")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the builds page scrolls sideways on a phone"
    context.close()


def test_a_token_secret_is_shown_once_and_copied(
    console_server: RunningServer, browser: Browser
) -> None:
    user, password = f"bob{uuid.uuid4().hex[:6]}", "bob-account-password"
    assert console_server.cli("user", "create", user, stdin=f"{password}\n").returncode == 0
    context = open_context(browser, console_server, DESKTOP)
    page = context.new_page()
    sign_in(page, user, password)

    page.get_by_role("link", name="Tokens", exact=True).click()
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("Pull and push").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-secret").inner_text()
    screenshot(page, "tokens-desktop")
    page.locator(".secret-card").get_by_role("button", name="Copy").click()

    assert secret.startswith("mrt_")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.reload()
    expect(page.locator("#new-token-secret")).to_have_count(0)
    expect(page.locator('tr[data-token="ci"]')).to_contain_text("pull, push")
    page.locator('tr[data-token="ci"]').get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("The token is revoked")
    context.close()


def test_the_sign_in_page_at_both_widths(console_server: RunningServer, browser: Browser) -> None:
    for viewport, name in [(DESKTOP, "sign-in-desktop"), (PHONE, "sign-in-phone")]:
        context = open_context(browser, console_server, viewport)
        page = context.new_page()
        page.goto("/namespaces")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Account name").fill("nobody")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("The account name or the password is wrong.")
        screenshot(page, name)
        context.close()
