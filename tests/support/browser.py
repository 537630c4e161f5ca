"""Headless Debian chromium driven by Playwright, for the browser tests.

Playwright is told to use the system chromium (`executable_path`), never a browser of its own; `make
install` installs Debian's chromium when it is missing. A missing browser fails the test with the fix
in the message: it is never skipped, so CI cannot go green without looking at the page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request, sync_playwright


def chromium_executable() -> str:
    """The system chromium's path; fails the test (naming `make install`) when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.fail(
        "Debian's chromium is not installed: run `make install` (it runs "
        "`apt-get install -y --no-install-recommends chromium` when the browser is missing).",
        pytrace=False,
    )


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """Headless Debian chromium, closed on exit."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class PageLog:
    """What the page said and asked for while it was open."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def new_logged_page(browser: Browser, *, width: int, height: int, scale: float = 1) -> tuple[Page, PageLog]:
    """A fresh page (its own context) of the given viewport, whose console messages of type error or
    warning (a CSP violation is one), page errors, dialogs, requests and failed requests are logged."""
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
    log = PageLog()

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            log.console.append(f"{message.type}: {message.text}")

    def on_request(request: Request) -> None:
        log.requests.append(request.url)

    def on_failed(request: Request) -> None:
        log.failed.append(f"{request.url}: {request.failure}")

    def on_dialog(dialog: Dialog) -> None:
        # A script that ran would open one (alert); record it and close it so the page cannot hang.
        log.errors.append(f"dialog opened: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: log.errors.append(str(error)))
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("dialog", on_dialog)
    return page, log
