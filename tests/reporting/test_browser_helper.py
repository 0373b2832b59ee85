"""The Playwright page helper on tiny hand-written pages (a few seconds in all).

What the report test relies on: a failing page's errors are all collected,
a good page reports none, and a missing Chromium fails (never skips) with
the command that installs it.
"""

import base64
import struct
import zlib

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.reporting import browser


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


def test_a_failing_page_reports_each_error(tmp_path):
    body = (
        '<img id="gone" src="missing.png">'
        "<script>console.error('bad', 42); throw new Error('uncaught here');</script>"
    )
    with browser.open_page(_page(tmp_path, "bad.html", body)) as (page, errors):
        assert page.evaluate("document.images[0].naturalWidth") == 0

    assert "console.error: bad 42" in errors
    assert any(e.startswith("pageerror:") and "uncaught here" in e for e in errors), errors
    failed = [e for e in errors if e.startswith("requestfailed:")]
    assert len(failed) == 1 and "missing.png" in failed[0], errors
    assert "ERR_FILE_NOT_FOUND" in failed[0]


def test_a_good_page_reports_nothing(tmp_path):
    image = base64.b64encode(_png(20, 10)).decode()
    body = (
        f'<h1 id="outcome">Fine</h1><img src="data:image/png;base64,{image}">'
        '<div style="height: 3000px"></div>'
        "<script>console.log('just info'); console.warn('only a warning');</script>"
    )
    with browser.open_page(_page(tmp_path, "good.html", body)) as (page, errors):
        assert page.evaluate("document.images[0].naturalWidth") == 20
        data = page.screenshot(full_page=True)

    assert errors == []
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24])[0] == browser.VIEWPORT["width"]  # IHDR


def test_opening_a_missing_file_fails(tmp_path):
    with pytest.raises(PlaywrightError, match="ERR_FILE_NOT_FOUND"):
        with browser.open_page(tmp_path / "nowhere.html"):
            pass


def test_missing_chromium_fails_saying_make_chromium(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(browser, "DEFAULT_CHROMIUM", str(tmp_path / "chromium"))
    with pytest.raises(pytest.fail.Exception, match="make chromium"):
        with browser.open_page("about:blank"):
            pass
