"""Playwright drives Debian's Chromium (never a downloaded browser) against pytest-django's live server.

The browser is started once per session; each test gets a fresh context (cookies) and a clean
database (`live_server` implies a transactional database, so the server thread sees the rows).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.admin.conftest import (  # noqa: F401  (fixtures shared with the test-client suite)
    PASSWORD,
    _fast_password_hashing,
    acme_flag,
    editor,
    globex_flag,
    make_person,
    outsider,
    owner,
    superuser,
    viewer,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Debian's chromium is not installed: run `make browser`")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls (fixtures,
    # assertions) are still synchronous code, which Django would otherwise refuse next to a loop.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    # `ADMIN_SCREENSHOTS=<dir>` keeps the page each test ends on, to look at as a product manager would.
    folder = os.environ.get("ADMIN_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
        opened.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
    context.close()


def sign_in(page: Page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))
