"""The JSON Schema: a valid 2020-12 schema, one source of truth, closed objects, described for editors."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from reconciler.spec.schema import schema

REPO = Path(__file__).resolve().parents[2]
MAP_OBJECTS = {"checkpoints", "labels"}  # objects keyed by the user's own names


def test_the_schema_is_valid_2020_12():
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_published_copy_equals_the_packaged_schema():
    published = json.loads((REPO / "schemas" / "saxdeployment.schema.json").read_text())
    assert published == schema(), "copy reconciler/spec/saxdeployment.schema.json to schemas/"


def _objects(node, path="$"):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, child in node.items():
            yield from _objects(child, f"{path}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _objects(child, f"{path}[{index}]")


def test_every_object_is_closed():
    for path, node in _objects(schema()):
        name = path.rsplit(".", 1)[-1]
        if name in MAP_OBJECTS:
            assert isinstance(node["additionalProperties"], dict), path
        else:
            assert node.get("additionalProperties") is False, path


def test_every_field_has_a_description_for_editors():
    definitions = schema()["$defs"]
    for path, node in _objects(schema()):
        for name, field in node.get("properties", {}).items():
            target = definitions[field["$ref"].rsplit("/", 1)[-1]] if "$ref" in field else field
            assert "description" in field or "description" in target, f"{path}.{name}"


def test_enums_are_those_of_the_apis():
    properties = schema()["properties"]
    assert properties["cluster"]["properties"]["releaseChannel"]["enum"] == ["RAPID", "REGULAR", "STABLE",
                                                                            "UNSPECIFIED"]
    assert properties["sax"]["properties"]["httpServer"]["properties"]["exposure"]["enum"] == ["internal", "public"]
    definitions = schema()["$defs"]
    assert definitions["checkpoint"]["properties"]["source"]["properties"]["format"]["enum"] == ["hf-gptj"]
    assert definitions["bucket"]["properties"]["storageClass"]["enum"] == ["STANDARD", "NEARLINE", "COLDLINE",
                                                                          "ARCHIVE"]
    assert schema()["required"] == ["apiVersion", "kind", "metadata", "project", "buckets"]
    assert schema()["dependentRequired"] == {"sax": ["cluster", "identity"], "models": ["sax"]}
