"""CuratedSchemaGen: the schema file's content is part of the cache key.

The local orchestrator runs the component's driver before the cache
look-up; the exec properties it returns are what the cache key holds.
"""

import hashlib

from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import pipeline_pb2

from components import source_fingerprint

SCHEMA_TEXT = 'feature { name: "label" type: INT }\n'


def _driver_exec_properties(schema_file: str) -> dict[str, str]:
    """Runs FingerprintDriver as the orchestrator would; returns the exec properties."""
    node = pipeline_pb2.PipelineNode()
    node.node_info.type.name = "components.curated_schema_gen.CuratedSchemaGen"
    execution_info = data_types.ExecutionInfo(
        input_dict={},
        exec_properties={"schema_file": schema_file},
        pipeline_run_id="run-1",
        pipeline_node=node,
    )
    output = source_fingerprint.FingerprintDriver(None).run(execution_info)
    return {key: value.string_value for key, value in output.exec_properties.items()}


def test_driver_adds_the_schema_files_sha256(tmp_path):
    schema_file = tmp_path / "schema.pbtxt"
    schema_file.write_text(SCHEMA_TEXT)
    properties = _driver_exec_properties(str(schema_file))
    assert properties["schema_file"] == str(schema_file), "the original property stays"
    assert properties["schema_sha256"] == hashlib.sha256(SCHEMA_TEXT.encode()).hexdigest()
    assert properties[source_fingerprint.SOURCE_SHA256_KEY]


def test_edited_schema_at_the_same_path_changes_the_key(tmp_path):
    schema_file = tmp_path / "schema.pbtxt"
    schema_file.write_text(SCHEMA_TEXT)
    before = _driver_exec_properties(str(schema_file))
    assert _driver_exec_properties(str(schema_file)) == before, "repeatable"

    schema_file.write_text(SCHEMA_TEXT.replace("INT", "FLOAT"))
    after = _driver_exec_properties(str(schema_file))

    assert after["schema_sha256"] != before["schema_sha256"]
    assert after["schema_file"] == before["schema_file"]
    assert (
        after[source_fingerprint.SOURCE_SHA256_KEY] == before[source_fingerprint.SOURCE_SHA256_KEY]
    )
