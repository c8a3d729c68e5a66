"""The JSON Schema: a valid 2020-12 schema, one source of truth, closed objects, described for editors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from reconciler.spec.schema import schema

REPO = Path(__file__).resolve().parents[2]
MAP_OBJECTS = {"checkpoints", "labels", "overrides"}  # objects keyed by the user's own names
# The package's file (what saxctl reads at run time) → schemas/, the one real file (what editors and the specs'
# `$schema=../schemas/...` line read, and what a raw URL serves).
PACKAGED_SCHEMAS = {
    "reconciler/spec/saxdeployment.schema.json": "schemas/saxdeployment.schema.json",
    "reconciler/engine/plan.schema.json": "schemas/plan.schema.json",
}
INT32_MAX = 2**31 - 1  # replicas, node counts and ports are int32 in the Kubernetes and GKE APIs


def test_the_schema_is_valid_2020_12():
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("packaged", PACKAGED_SCHEMAS)
def test_the_package_links_to_the_schemas_in_schemas_instead_of_copying_them(packaged):
    published = REPO / PACKAGED_SCHEMAS[packaged]
    assert (REPO / packaged).is_symlink(), f"{packaged} must be a symlink to {published}, not a copy that can drift"
    assert (REPO / packaged).resolve() == published and not published.is_symlink()


def test_a_wheel_ships_both_schemas(tmp_path):
    """What `pip install .` installs (a wheel, not the checkout) carries the files saxctl reads at run time."""
    build_backend = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    assert build_backend == [f"setuptools=={metadata.version('setuptools')}"], "the test extra pins the backend"
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".sandbox", "__pycache__", "*.egg-info", "build", "tests", "bench"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--wheel-dir", str(tmp_path / "wheels"), str(source)],
                           capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "wheels").glob("saxctl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for packaged, published in PACKAGED_SCHEMAS.items():
            assert archive.read(packaged) == (REPO / published).read_bytes(), f"{wheel.name} lacks {packaged}"
        sample_text = "reconciler/sandbox/sample_text.txt"  # the sample checkpoint's tokenizer is trained on it
        assert archive.read(sample_text) == (REPO / sample_text).read_bytes(), f"{wheel.name} lacks {sample_text}"


def test_every_integer_is_bounded_by_what_the_apis_take():
    """Unbounded, `replicas: 9223372036854775807` would pass validation and fail in an API's int32 field."""
    integers = dict(_of_type(schema(), "integer"))
    assert len(integers) == 4  # cpuNodes.count, tpuPool.nodes, httpServer.port, replicas
    for path, node in integers.items():
        assert node["minimum"] >= 1 and node["maximum"] <= INT32_MAX, path


def _of_type(node, json_type, path="$"):
    if isinstance(node, dict):
        if node.get("type") == json_type:
            yield path, node
        for key, child in node.items():
            yield from _of_type(child, json_type, f"{path}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _of_type(child, json_type, f"{path}[{index}]")


def test_every_object_is_closed():
    for path, node in _of_type(schema(), "object"):
        name = path.rsplit(".", 1)[-1]
        if name in MAP_OBJECTS:
            assert isinstance(node["additionalProperties"], dict), path
        else:
            assert node.get("additionalProperties") is False, path


def test_every_field_has_a_description_for_editors():
    definitions = schema()["$defs"]
    for path, node in _of_type(schema(), "object"):
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
