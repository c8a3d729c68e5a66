"""Any value of any type at any field gives problems or a model, never an exception."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from reconciler.errors import SpecError
from reconciler.spec.loader import load_spec
from reconciler.spec.model import Spec

TUTORIAL = Path(__file__).resolve().parents[2] / "specs" / "gptj-v5e-2x2.yaml"
REPLACEMENTS = [None, -1, True, "", "2x2", [1, "a"], {"a": {"b": 1}}]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, path + (index,))


def test_every_field_with_every_kind_of_value(tmp_path):
    yaml = YAML(typ="safe", pure=True)
    original = yaml.load(TUTORIAL.read_text())
    target = tmp_path / "spec.yaml"
    outcomes = {"model": 0, "problems": 0}
    for path in list(_paths(original))[1:]:
        for replacement in REPLACEMENTS:
            document = copy.deepcopy(original)
            parent = document
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = replacement
            target.write_text(json.dumps(document, indent=1))  # JSON is YAML, and much faster to write
            try:
                outcome = load_spec(str(target), environ={})
            except SpecError as error:
                assert error.problems, path
                outcomes["problems"] += 1
            else:
                assert isinstance(outcome, Spec)
                outcomes["model"] += 1
    assert outcomes["problems"] > outcomes["model"] > 0


@pytest.mark.parametrize("text", [
    "? [a, b]\n: c\n", "apiVersion: saxctl/v1\n<<: {kind: SaxDeployment}\n", "!!binary aGVsbG8=\n",
    "a: !!set {x, y}\n", "a: 0x1F\nb: .inf\nc: 1e400\n", "\"unterminated\n", "a: *nowhere\n", "%YAML 1.1\n---\na: yes\n",
])
def test_unusual_yaml_is_reported_not_raised(tmp_path, text):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_spec(str(path), environ={})
    assert raised.value.problems
