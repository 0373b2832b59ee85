"""An on-disk memo for the run report's slow parts, keyed by what they are made from.

A fully cached rerun reports the very artifacts of the run before it (the
same model, examples and evaluation), yet writing its report took about 3 s
on the full data: two passes over the examples (the test split through the
model, the train split for the mean digits) and matplotlib drawing six
figures. Each of those parts is a pure function of immutable inputs (TFX
never rewrites an artifact URI; a figure is a function of its numbers), so
it is stored under a hash of those inputs and of the source of the code that
computes it: a changed artifact, number or reporting module is a miss, never
a stale figure. Entries live in `<output_dir>/reports/.cache/`; the oldest
are dropped beyond `MAX_ENTRIES`. A missing, unreadable or corrupt entry is
recomputed, so deleting the folder is always safe.
"""

import hashlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

CACHE_DIR = ".cache"
MAX_ENTRIES = 400
"""About 40 runs' worth of reports (entries are 10-300 KB each)."""
_REPORTING_DIR = os.path.dirname(os.path.abspath(__file__))
_CODE_FILES = ("report_cache.py", "report_data.py", "plots.py")
T = TypeVar("T")


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as JSON values (json.dumps' `default`)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot key or store a {type(value).__name__}")


def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _CODE_FILES:
        with open(os.path.join(_REPORTING_DIR, name), "rb") as source:
            digest.update(source.read())
    return digest.hexdigest()


class ReportCache:
    """Computes each part once per distinct input; `directory=None` computes every time."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self._code = _code_fingerprint() if directory else ""

    def key(self, kind: str, inputs: Any) -> str:
        """The entry name of `kind` computed from `inputs` (JSON-able, numpy allowed)."""
        text = json.dumps([kind, inputs, self._code], default=_plain, sort_keys=True)
        return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"

    def get(
        self,
        kind: str,
        inputs: Any,
        compute: Callable[[], T],
        dump: Callable[[T], Any] = lambda value: value,
        load: Callable[[Any], T] = lambda stored: stored,
    ) -> T:
        """compute()'s value for these inputs, from the cache when it holds one.

        Args:
          kind: What is computed (part of the key and the file name).
          inputs: Everything the value depends on besides the reporting code.
          compute: Makes the value on a miss.
          dump: The value as JSON-able data (numpy allowed).
          load: The value back from what dump returned.
        """
        if self.directory is None:
            return compute()
        path = os.path.join(self.directory, self.key(kind, inputs) + ".json")
        try:
            with open(path, encoding="utf-8") as stored:
                value = load(json.load(stored))
            os.utime(path)  # recently used: pruned last
            self.hits += 1
            return value
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            logging.warning("Report cache entry %s unreadable (%s); recomputing", path, error)
        value = compute()
        self.misses += 1
        self._store(path, dump(value))
        return value

    def _store(self, path: str, stored: Any) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as out:
                json.dump(stored, out, default=_plain)
            os.replace(temporary, path)
            self._prune()
        except OSError as error:  # a report without a cache is still a report
            logging.warning("Report cache not written (%s): %s", path, error)

    def _prune(self) -> None:
        entries = [
            os.path.join(self.directory, name)
            for name in os.listdir(self.directory)
            if name.endswith(".json")
        ]
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=os.path.getmtime)
        for stale in entries[: len(entries) - MAX_ENTRIES]:
            os.remove(stale)
