"""Any value of any type at any field gives problems or a model, never an exception."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.errors import SpecError
from reconciler.spec.loader import check_files, load_spec
from reconciler.spec.model import Spec
from reconciler.spec.schema import schema

TUTORIAL = Path(__file__).resolve().parents[2] / "specs" / "gptj-v5e-2x2.yaml"
# Optional fields the tutorial leaves out, so that every field of the schema gets every value.
OPTIONAL_FIELDS = {
    ("buckets", "admin"): {"storageClass": "STANDARD", "uniformAccess": True, "versioning": True,
                           "labels": {"team": "ml"}},
    ("buckets", "data"): {"storageClass": "NEARLINE", "uniformAccess": False, "versioning": False,
                          "labels": {"team": "ml"}},
    ("sax", "modelServer"): {"replicas": 1},
    ("sax", "httpServer"): {"replicas": 1},
    ("models", 0): {"overrides": {"BATCH_SIZE": "4"}},
}
# Hypothesis runs the same examples every time, with no database: a failure here is a failure on every machine.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                         suppress_health_check=[HealthCheck.too_slow])


class Literal(str):
    """YAML text written as is: numbers no Python value prints (a 5000-digit integer), hex, YAML's own floats."""


NUMBERS = [
    math.nan, math.inf, -math.inf, 2.0, 2.5, -0.0, 1e30, 5e-324, 0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1,
    Literal("1e400"), Literal("9" * 5000), Literal("0x" + "f" * 4000), Literal("0o17"), Literal(".NaN"),
]
# Every field gets each of these; hypothesis below tries the rest of NUMBERS and values of every shape.
REPLACEMENTS = [None, True, "", "2x2", "9" * 5000, [1, "a"], {"a": {"b": 1}}, math.nan, -math.inf, 2.5, -1, 2**31,
                Literal("9" * 5000)]


def to_yaml(value) -> str:
    """value as flow-style YAML: JSON where JSON can say it, YAML's own words for non-finite and huge numbers."""
    if isinstance(value, Literal):
        return str(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, repr(value))
    if isinstance(value, int):
        return hex(value) if value > 10**100 else str(value)  # YAML 1.2 has no negative hex
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_yaml(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(str(key))}: {to_yaml(item)}" for key, item in value.items()) + "}"


def full_spec() -> dict:
    document = YAML(typ="safe", pure=True).load(TUTORIAL.read_text())
    for (section, name), fields in OPTIONAL_FIELDS.items():
        document[section][name].update(fields)
    document["cluster"]["tpuPools"][0]["zone"] = document["cluster"]["location"]  # a zonal cluster's own zone
    document["drift"] = {"ignore": [{"address": "gke.node_pool.tpu", "fields": ["nodeCount"]}]}  # not in the tutorial
    return document


def field_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from field_paths(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from field_paths(child, path + (index,))


FULL = full_spec()
PATHS = list(field_paths(FULL))[1:]


def replaced(path: tuple, replacement) -> dict:
    document = copy.deepcopy(FULL)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return document


def outcome(target: Path, text: str, environ: dict[str, str] | None = None) -> str:
    """'model' or 'problems'; anything else raised is the bug these tests look for."""
    target.write_text(text)
    try:
        spec = load_spec(str(target), environ=environ or {})
    except SpecError as error:
        assert error.problems
        assert all(problem.line >= 1 and problem.column >= 1 for problem in error.problems)
        assert all(str(problem).encode("utf-8") for problem in error.problems), "every message can be printed"
        return "problems"
    assert isinstance(spec, Spec)
    return "model"


def _schema_fields(node, path=()):
    """Every field the schema defines, as a path with 0 for list items and '*' for the user's own keys."""
    definitions = schema()["$defs"]
    if "$ref" in node:
        node = definitions[node["$ref"].rsplit("/", 1)[-1]]
    for name, child in node.get("properties", {}).items():
        yield path + (name,)
        yield from _schema_fields(child, path + (name,))
    if isinstance(node.get("additionalProperties"), dict):
        yield from _schema_fields(node["additionalProperties"], path + ("*",))
    if "items" in node:
        yield from _schema_fields(node["items"], path + (0,))


def test_the_fuzzed_spec_has_every_field_of_the_schema():
    """So a field added to the schema is fuzzed too (add it to OPTIONAL_FIELDS when the tutorial leaves it out)."""
    user_keyed = {"labels", "checkpoints", "overrides"}

    def shape(path):
        return tuple(0 if isinstance(step, int) else "*" if index and path[index - 1] in user_keyed
                     else step for index, step in enumerate(path))

    present = {shape(path) for path in PATHS}
    assert [path for path in _schema_fields(schema()) if path not in present] == []


def test_every_field_with_every_kind_of_value(tmp_path):
    target = tmp_path / "spec.yaml"
    outcomes = {"model": 0, "problems": 0}
    for path in PATHS:
        for replacement in REPLACEMENTS:
            outcomes[outcome(target, to_yaml(replaced(path, replacement)))] += 1
    assert outcomes["problems"] > outcomes["model"] > 0


def test_the_unmodified_fuzz_base_is_a_valid_spec(tmp_path):
    assert outcome(tmp_path / "spec.yaml", to_yaml(FULL)) == "model"


# Where the tutorial writes each integer field: (field path, text around the number, the number as written).
INTEGER_FIELDS = [
    ("cluster.cpuNodes.count", "{count: 2,", "2"),
    ("cluster.tpuPools[0].nodes", "nodes: 1}", "1"),
    ("sax.httpServer.port", "port: 8888", "8888"),
    ("sax.adminServer.replicas", "replicas: 1\n  modelServer", "1"),
    ("models[0].replicas", "checkpoint: gptj-6b\n    replicas: 1", "1"),
]
# 15 (0o17) fits some of these fields; YAML's true is a bool, though Python counts it as the integer 1.
NO_FIELD_INTEGERS = [value for value in NUMBERS if value != Literal("0o17")] + [True, False]


def _short(value) -> str:
    written = to_yaml(value)
    return written if len(written) <= 24 else f"{written[:8]}...{len(written)}-characters"


@pytest.mark.parametrize("value", NO_FIELD_INTEGERS, ids=_short)
@pytest.mark.parametrize("field, around, number", INTEGER_FIELDS, ids=[field[0] for field in INTEGER_FIELDS])
def test_an_integer_field_refuses_what_is_no_integer_in_its_range_at_its_position(tmp_path, field, around, number,
                                                                                   value):
    text = TUTORIAL.read_text()
    assert text.count(around) == 1
    written = to_yaml(value)
    changed = text.replace(around, around.replace(number, written))
    at = changed.index(around.replace(number, written)) + around.index(number)
    target = tmp_path / "spec.yaml"
    target.write_text(changed)
    problems = check_files([str(target)], environ={})
    assert [(problem.field, problem.line, problem.column) for problem in problems] == [
        (field, changed.count("\n", 0, at) + 1, at - changed.rfind("\n", 0, at))], problems


def _values():
    scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
               | st.sampled_from(NUMBERS))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


@DETERMINISTIC
@given(path=st.sampled_from(PATHS), value=_values())
def test_any_value_at_any_field(tmp_path_factory, path, value):
    outcome(tmp_path_factory.mktemp("fuzz") / "spec.yaml", to_yaml(replaced(path, value)))


@DETERMINISTIC
@given(path=st.sampled_from(PATHS), text=st.text(max_size=30) | st.sampled_from(
    [".nan", ".inf", "-.inf", "1e400", "2.0", "true", "0x" + "f" * 4000, "9" * 5000, "[1, 2]", "{a: 1}", "~"]))
def test_any_environment_value_behind_an_unquoted_reference(tmp_path_factory, path, text):
    """`nodes: ${N}` is typed after expansion: whatever N holds, a problem or a model."""
    document = to_yaml(replaced(path, Literal("${FUZZ}")))
    outcome(tmp_path_factory.mktemp("fuzz") / "spec.yaml", document, environ={"FUZZ": text})


@pytest.mark.parametrize("text", [
    "? [a, b]\n: c\n", "apiVersion: saxctl/v1\n<<: {kind: SaxDeployment}\n", "!!binary aGVsbG8=\n",
    "a: !!set {x, y}\n", "a: 0x1F\nb: .inf\nc: 1e400\n", "\"unterminated\n", "a: *nowhere\n", "%YAML 1.1\n---\na: yes\n",
    'a: "\\ud83d"\n', '"\\udc80": 1\n', "a: " + "9" * 5000 + "\n",
])
def test_unusual_yaml_is_reported_not_raised(tmp_path, text):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_spec(str(path), environ={})
    assert raised.value.problems
