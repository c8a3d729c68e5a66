"""${VAR} interpolation: expansion rules, escapes, typing after expansion, and errors at the node."""

from __future__ import annotations

import pytest

from reconciler.errors import SpecError
from reconciler.spec.interpolation import InterpolationError, interpolate
from reconciler.spec.loader import check_files, load_spec


@pytest.mark.parametrize("text, environ, expected", [
    ("${A}", {"A": "x"}, "x"),
    ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
    ("${A}${B}", {"A": "1", "B": "2"}, "12"),
    ("${A:-fallback}", {}, "fallback"),
    ("${A:-fallback}", {"A": ""}, "fallback"),
    ("${A:-fallback}", {"A": "set"}, "set"),
    ("${A:-}", {}, ""),
    ("${A}", {"A": ""}, ""),
    ("$${A}", {}, "${A}"),
    ("$${A} and ${A}", {"A": "x"}, "${A} and x"),
    ("cost is $5", {}, "cost is $5"),
    ("$A stays", {"A": "x"}, "$A stays"),
    ("${A:-${B}", {}, "${B"),  # a default runs to the first '}'
], ids=lambda value: repr(value) if isinstance(value, str) else None)
def test_interpolate(text, environ, expected):
    assert interpolate(text, environ) == expected


@pytest.mark.parametrize("text, message", [
    ("${PROJECT_ID}", "environment variable PROJECT_ID is not set"),
    ("${}", "'${}' is not a variable reference: use ${NAME} or ${NAME:-default}"),
    ("${A-B}", "'${A-B}' is not a variable reference: use ${NAME} or ${NAME:-default}"),
    ("x${A", "unterminated '${': close it with '}' or write '$${' for a literal '${'"),
])
def test_interpolate_errors(text, message):
    with pytest.raises(InterpolationError) as raised:
        interpolate(text, {})
    assert str(raised.value) == message


SPEC = """apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {name: demo}
project:
  id: ${PROJECT_ID}
  region: ${REGION:-us-central1}
buckets:
  admin: {name: "${PROJECT_ID}-sax-admin", location: US}
  data:
    name: ${PROJECT_ID}-sax-data
    location: US
    versioning: ${VERSIONING}
cluster:
  name: saxml
  location: ${ZONE}
  cpuNodes:
    count: ${CPU_NODES}
    machineType: e2-standard-4
  tpuPools:
    - name: tpu
      machineType: ct5lp-hightpu-4t
      topology: "${TOPOLOGY}"
      nodes: 1
checkpoints:
  gptj:
    source: {format: hf-gptj, path: "./weights/$${RUN}"}
    destination: gs://${PROJECT_ID:-x}-sax-data/gptj/checkpoint_00000000
"""


def _write(tmp_path, text=SPEC):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def test_a_spec_takes_values_from_the_environment(tmp_path):
    environ = {"PROJECT_ID": "my-project", "VERSIONING": "true", "ZONE": "us-central1-b", "CPU_NODES": "3",
               "TOPOLOGY": "2x2"}
    spec = load_spec(_write(tmp_path), environ=environ)
    assert spec.project.id == "my-project" and spec.project.region == "us-central1"
    assert spec.buckets.admin.name == "my-project-sax-admin"
    assert spec.buckets.data.versioning is True  # unquoted: typed as YAML types the expanded text
    assert spec.cluster.cpu_nodes.count == 3
    assert spec.cluster.location == "us-central1-b"
    assert spec.checkpoints["gptj"].source.path == str(tmp_path / "weights" / "${RUN}")
    assert spec.checkpoints["gptj"].destination == "gs://my-project-sax-data/gptj/checkpoint_00000000"


def test_quoted_references_stay_strings(tmp_path):
    text = SPEC.replace("count: ${CPU_NODES}", 'count: "${CPU_NODES}"')
    environ = {"PROJECT_ID": "my-project", "VERSIONING": "true", "ZONE": "us-central1-b", "CPU_NODES": "3",
               "TOPOLOGY": "2x2"}
    problems = check_files([_write(tmp_path, text)], environ=environ)
    assert [(problem.field, problem.message) for problem in problems] == [
        ("cluster.cpuNodes.count", "expected an integer, got '3'")]


def test_every_unset_variable_is_reported_once_at_its_node(tmp_path):
    path = _write(tmp_path)
    problems = check_files([path], environ={"CPU_NODES": "2"})
    assert [str(problem) for problem in problems] == [
        f"{path}:5:7: project.id: environment variable PROJECT_ID is not set",
        f"{path}:8:17: buckets.admin.name: environment variable PROJECT_ID is not set",
        f"{path}:10:11: buckets.data.name: environment variable PROJECT_ID is not set",
        f"{path}:12:17: buckets.data.versioning: environment variable VERSIONING is not set",
        f"{path}:15:13: cluster.location: environment variable ZONE is not set",
        f"{path}:22:17: cluster.tpuPools[0].topology: environment variable TOPOLOGY is not set",
    ]


def test_environ_defaults_to_the_process_environment(tmp_path, monkeypatch):
    for name, value in {"PROJECT_ID": "env-project", "VERSIONING": "false", "ZONE": "us-central1-c",
                        "CPU_NODES": "1", "TOPOLOGY": "2x2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REGION", raising=False)
    assert load_spec(_write(tmp_path)).project.id == "env-project"


def test_values_from_the_environment_are_checked_like_written_ones(tmp_path):
    environ = {"PROJECT_ID": "my-project", "VERSIONING": "maybe", "ZONE": "europe-west4-a", "CPU_NODES": "0",
               "TOPOLOGY": "2x2"}
    with pytest.raises(SpecError) as raised:
        load_spec(_write(tmp_path), environ=environ)
    assert [(problem.field, problem.message) for problem in raised.value.problems] == [
        ("buckets.data.versioning", "expected true or false, got 'maybe'"),
        ("cluster.location", "zone europe-west4-a is in europe-west4, not in project.region us-central1: "
                             "use a zone of us-central1 such as us-central1-a, or change project.region"),
        ("cluster.cpuNodes.count", "must be at least 1, got 0"),
    ]


def test_an_unquoted_reference_in_a_flow_mapping_gets_a_hint(tmp_path):
    text = SPEC.replace('{name: "${PROJECT_ID}-sax-admin", location: US}', "{name: ${PROJECT_ID}-sax-admin, location: US}")
    path = _write(tmp_path, text)
    assert [str(problem) for problem in check_files([path], environ={})] == [
        path + ":8:18: invalid YAML: expected ',' or '}', but got '{' (while parsing a flow mapping that starts "
        "at line 8, column 10); inside {...} or [...] quote a reference: \"${VAR}\""]


def test_keys_are_never_interpolated(tmp_path):
    text = SPEC.replace("  region: ${REGION:-us-central1}", "  region: us-central1\n  ${EXTRA}: x")
    environ = {"PROJECT_ID": "my-project", "VERSIONING": "true", "ZONE": "us-central1-b", "CPU_NODES": "3",
               "TOPOLOGY": "2x2", "EXTRA": "id"}
    problems = check_files([_write(tmp_path, text)], environ=environ)
    assert [problem.message for problem in problems] == ["unknown field '${EXTRA}'; known fields: id, region"]
