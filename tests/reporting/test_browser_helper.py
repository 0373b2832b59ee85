"""The headless-browser helper on tiny hand-written pages (a few seconds in all)."""

import base64
import os
import struct
import zlib

import pytest

from tests.reporting.browser import BrowserError, HeadlessBrowser, child_pids, find_chromium

IMAGES = "[...document.images].map(i => ({id: i.id, complete: i.complete, w: i.naturalWidth}))"


def _png(width: int, height: int) -> bytes:
    """A valid grey RGB PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _page(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><title>{name}</title></head><body>{body}</body>")
    return str(path)


@pytest.fixture(scope="module")
def browser():
    with HeadlessBrowser(timeout=30) as browser:
        yield browser


def test_broken_image_has_no_width_and_is_logged(browser, tmp_path):
    browser.open(_page(tmp_path, "broken.html", '<img id="gone" src="missing.png">'))

    assert browser.evaluate(IMAGES) == [{"id": "gone", "complete": True, "w": 0}]
    errors = browser.errors()
    assert len(errors) == 1, errors
    assert "ERR_FILE_NOT_FOUND" in errors[0] and "missing.png" in errors[0]


def test_corrupt_embedded_image_has_no_width(browser, tmp_path):
    browser.open(_page(tmp_path, "corrupt.html", '<img src="data:image/png;base64,AAAA">'))

    assert browser.evaluate("document.images[0].naturalWidth") == 0


def test_console_error_and_uncaught_exception_are_reported(browser, tmp_path):
    script = "<script>console.error('bad', 42); throw new Error('uncaught here');</script>"
    browser.open(_page(tmp_path, "console.html", script))

    errors = browser.errors()
    assert len(errors) == 2, errors
    assert errors[0] == "console.error: bad 42"
    assert "uncaught here" in errors[1]


def test_good_page_has_no_errors(browser, tmp_path):
    image = base64.b64encode(_png(20, 10)).decode()
    body = (
        f'<h1 id="outcome">Fine</h1><img id="ok" src="data:image/png;base64,{image}">'
        "<script>console.log('just info'); console.warn('only a warning');</script>"
    )
    browser.open(_page(tmp_path, "good.html", body))

    assert browser.errors() == []
    assert browser.evaluate(IMAGES) == [{"id": "ok", "complete": True, "w": 20}]
    assert browser.evaluate("document.getElementById('outcome').textContent") == "Fine"


def test_errors_of_an_earlier_page_are_dropped(browser, tmp_path):
    browser.open(_page(tmp_path, "broken.html", '<img src="missing.png">'))
    assert browser.errors()
    browser.open(_page(tmp_path, "plain.html", "<p>nothing wrong</p>"))
    assert browser.errors() == []


def test_screenshot_is_a_full_page_png(browser, tmp_path):
    browser.open(_page(tmp_path, "tall.html", '<div style="height: 3000px">tall</div>'))

    path = browser.screenshot(tmp_path / "shots" / "tall.png")

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width == 1280
    assert height >= 3000  # beyond the 800-pixel viewport


def test_opening_a_missing_file_fails(browser, tmp_path):
    with pytest.raises(BrowserError, match="ERR_FILE_NOT_FOUND"):
        browser.open(tmp_path / "nowhere.html")


def test_missing_chromium_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserError, match="apt-get install chromium"):
        find_chromium()


def test_browser_processes_are_gone_after_the_block(tmp_path):
    children_before = child_pids()
    with HeadlessBrowser(timeout=30) as own:
        group = own._process.pid
        own.open(_page(tmp_path, "plain.html", "<p>x</p>"))
        assert child_pids() > children_before

    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # no member left, not even a zombie
    assert child_pids() == children_before  # the crash handlers too
