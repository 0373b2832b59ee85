"""The HTML run report of a real released run, opened in headless Chromium.

Checks what only a browser can: the page parses into every section, each
embedded figure decodes to an image, nothing fails or logs an error while
loading (no console error, page error or failed request), and the page
runs no JavaScript. A full-page screenshot is saved for a human to look at
(its path is printed; see it with `pytest -s`). Playwright drives Debian's
chromium (`make chromium`); see tests/reporting/browser.py.
"""

import pathlib
import struct
import urllib.parse

import pytest

from reporting.report import REPORT_SECTIONS, write_report
from tests.reporting.browser import VIEWPORT, open_page

IMAGES = (
    "[...document.images].map(i => ({src: i.getAttribute('src').slice(0, 40),"
    " complete: i.complete, width: i.naturalWidth, alt: i.alt}))"
)


@pytest.fixture(scope="module")
def report_index(released_run) -> pathlib.Path:
    """The released run's report, written afresh."""
    index = pathlib.Path(write_report(released_run))
    assert index.is_file(), index
    return index


@pytest.fixture(scope="module")
def report(report_index):
    """The report open in the browser (loaded), the errors it reported, its path."""
    with open_page(report_index) as (page, errors):
        yield page, errors, report_index


def test_every_section_is_present_in_page_order(report):
    page, _, _ = report
    ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
    assert [i for i in ids if i in REPORT_SECTIONS] == list(REPORT_SECTIONS)


def test_every_embedded_image_decodes(report):
    page, _, _ = report
    images = page.evaluate(IMAGES)
    assert images, "the report shows no figure"
    broken = [i for i in images if not (i["complete"] and i["width"] > 0)]
    assert broken == [], f"{len(broken)} of {len(images)} images did not decode"
    external = [i["src"] for i in images if not i["src"].startswith("data:image/png;base64,")]
    assert external == [], "the page should load nothing: figures are PNG data URIs"


def test_loading_logged_no_error(report):
    _, errors, _ = report
    assert errors == []


def test_page_has_no_javascript(report):
    page, _, _ = report
    assert page.evaluate("document.scripts.length") == 0
    handlers = page.evaluate(
        "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
        ".filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))"
    )
    assert handlers == []
    links = page.evaluate("[...document.links].map(a => a.href)")
    assert [href for href in links if href.startswith("javascript:")] == []


def test_in_page_links_and_local_links_resolve(report):
    page, _, _ = report
    anchors = page.evaluate(
        "[...document.querySelectorAll('a[href^=\"#\"]')].map(a => a.getAttribute('href'))"
    )
    missing = [
        a
        for a in anchors
        if a != "#" and not page.evaluate(f"!!document.getElementById({a[1:]!r})")
    ]
    assert missing == []
    files = page.evaluate(
        "[...document.links].filter(a => a.protocol === 'file:').map(a => a.pathname)"
    )
    dangling = [f for f in files if not pathlib.Path(urllib.parse.unquote(f)).exists()]
    assert dangling == [], "links to missing files"


def test_full_page_screenshot(report, tmp_path):
    page, _, index = report
    path = tmp_path / "report.png"
    page.screenshot(path=path, full_page=True)
    print(f"\nscreenshot of {index}: {path}")

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width == VIEWPORT["width"]
    assert height > VIEWPORT["height"], "nine sections with figures: taller than one screen"
