"""Headless Chromium for tests of HTML pages: Playwright driving Debian's ``chromium``.

Playwright's own browser downloads are never used: the browser is the one
``make chromium`` installs (``chromium`` on PATH, else ``/usr/bin/chromium``).
A missing browser fails the test, with the command that installs it::

    with open_page("/tmp/report/index.html") as (page, errors):  # loaded
        page.evaluate("document.images.length")
        page.screenshot(path="/tmp/report.png", full_page=True)
        assert errors == []

``errors`` collects, while the page is open, ``console.error`` and
``console.assert`` messages (Chromium also logs a resource that fails to load
there), uncaught exceptions (``pageerror``) and failed requests
(``requestfailed``), one line each.
"""

import contextlib
import os
import pathlib
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

DEFAULT_CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}


def chromium_executable() -> str:
    """Debian's Chromium; fails the calling test (no skip) where it is not installed."""
    found = shutil.which("chromium") or DEFAULT_CHROMIUM
    if not os.access(found, os.X_OK):
        pytest.fail(
            f"Chromium not found (no `chromium` on PATH, no {DEFAULT_CHROMIUM}): "
            "run `make chromium` (apt-get install chromium), as `make test` does",
            pytrace=False,
        )
    return found


@contextlib.contextmanager
def open_page(
    path_or_url: str | os.PathLike, timeout_ms: float = 60_000
) -> Iterator[tuple[Page, list[str]]]:
    """A page with ``path_or_url`` loaded (load event), and the errors it reports.

    The browser (as root: no sandbox) is closed on leaving the block.
    """
    url = str(path_or_url)
    if "://" not in url and not url.startswith(("about:", "data:")):
        url = pathlib.Path(url).resolve().as_uri()
    executable = chromium_executable()
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(timeout_ms)

            def on_console(message: ConsoleMessage) -> None:
                if message.type in ("error", "assert"):
                    errors.append(f"console.{message.type}: {message.text}")

            page.on("console", on_console)
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on(
                "requestfailed",
                lambda request: errors.append(f"requestfailed: {request.url} ({request.failure})"),
            )
            page.goto(url, wait_until="load")
            # One round trip through the page, so that log entries sent just
            # after the load event (a resource's failure) are collected first.
            page.evaluate("() => new Promise(resolve => setTimeout(resolve, 50))")
            yield page, errors
        finally:
            browser.close()
