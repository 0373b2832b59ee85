"""SpanListing: which spans exist, as a string parameter the span reader is keyed on.

Open-source KFP runs neither resolvers nor ExampleGen's span driver, so the
listing happens in a task of its own: it lists and checks `span-<N>/` in the
spans folder (`components.spans`), checks the numbers against the spans the
served model's manifest says were present at its release, and outputs the
listing (span numbers, forms, file counts, content fingerprints, the window)
as a String. MnistExampleGen takes that string as a *parameter*
(`listing.future()[0].value`), so its cache key holds the listing's value:

- on KFP the listing task is never cached (`kubeflow_v2_runner`
  `NEVER_CACHED_TASKS`) and its output parameter is part of the reader's
  cache key (`cacheutils/cache.go GenerateCacheKey` keys parameters by
  value): an unchanged folder gives the same value, a cache hit, the same
  Examples and a cached run; a new span changes the value and the run
  executes from the reader on;
- under LocalDagRunner the parameter also arrives as an input artifact,
  whose id is in the cache key; the listing is cached on the folder's content
  (its `content_fingerprints` below), so an unchanged folder reuses the
  earlier listing artifact and the run stays cached.
"""

import json
import logging

from tfx.dsl.component.experimental.annotations import OutputDict, Parameter
from tfx.dsl.component.experimental.decorators import component

from components import spans
from components.source_fingerprint import FingerprintDriver
from contract import releases, tfx_internals


def released_spans(serving_model_dir: str) -> list[int]:
    """Span numbers present when the newest release was made (its manifest)."""
    newest = releases.newest_release(serving_model_dir) if serving_model_dir else None
    manifest = releases.read_manifest(newest.path) if newest else None
    recorded = ((manifest or {}).get("data") or {}).get("spans") or {}
    return [int(number) for number in recorded.get("present", [])]


def make_listing(spans_dir: str, span_window: int, serving_model_dir: str) -> str:
    """Lists and checks the spans; returns the listing JSON (see `spans.listing_json`)."""
    found = spans.list_spans(spans_dir)
    spans.check_history(found, released_spans(serving_model_dir))
    return spans.listing_json(spans_dir, found, span_window)


@component
def SpanListing(  # noqa: N802 (TFX components are named like classes)
    spans_dir: Parameter[str],
    span_window: Parameter[int] = 0,
    serving_model_dir: Parameter[str] = "",
) -> OutputDict(listing=str):
    """Lists the spans folder and picks the window of spans to train on.

    Args:
      spans_dir: Folder of `span-<N>/` folders (local path or object store).
      span_window: Train on the newest this many spans; 0 = all.
      serving_model_dir: The releases; the newest one's manifest says which
        spans were present at its release (numbers may not go backwards, and
        a span it saw may not vanish).

    Returns:
      `listing`: JSON with `present` (every span number), `window` (the
      spans to train on) and `spans` (number, form, files, sha256 of each).
    """
    listing = make_listing(spans_dir, span_window, serving_model_dir)
    logging.info("SpanListing: window %s", json.loads(listing)["window"])
    return {"listing": listing}


def _listing_fingerprint(exec_properties: dict) -> dict[str, str]:
    """The folder's content, read before the cache look-up (see module docstring)."""
    try:
        found = spans.list_spans(exec_properties["spans_dir"])
    except spans.SpanError as error:
        return {"spans_listing": f"error: {error}"}  # the executor raises it with the fix
    window = int(exec_properties.get("span_window") or 0)
    return {"spans_listing": spans.listing_json(exec_properties["spans_dir"], found, window)}


tfx_internals.declare_driver(SpanListing, FingerprintDriver, (__name__,), _listing_fingerprint)
