"""CuratedSchemaGen: TFX's ImportSchemaGen, keyed on the schema's content.

ImportSchemaGen's cache key holds the schema file's *path*: after an edit to
`schemas/schema.pbtxt` a rerun took the old schema from the cache and
ExampleValidator kept validating against it, so the AnomalyGate's advice to
fix the schema did nothing until the cache was wiped. The driver
(components/source_fingerprint.py) adds the file's SHA-256 to the key, so an
edited schema is imported again and everything that reads it reruns.
"""

import hashlib
from typing import Any

from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.types import standard_component_specs

from components.source_fingerprint import FingerprintDriver


def _schema_fingerprint(exec_properties: dict[str, Any]) -> dict[str, str]:
    with open(exec_properties[standard_component_specs.SCHEMA_FILE_KEY], "rb") as source:
        return {"schema_sha256": hashlib.sha256(source.read()).hexdigest()}


class CuratedSchemaGen(ImportSchemaGen):
    """ImportSchemaGen whose cache key sees the schema file's content."""

    DRIVER_CLASS = FingerprintDriver
    SOURCE_MODULES: tuple[str, ...] = ()
    content_fingerprints = staticmethod(_schema_fingerprint)
