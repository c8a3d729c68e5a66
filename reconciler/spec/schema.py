"""Check a spec document against the JSON Schema and turn each violation into a located, readable SpecProblem."""

from __future__ import annotations

import difflib
import functools
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from reconciler.errors import SpecProblem
from reconciler.spec import schema_cache
from reconciler.spec.document import SpecDocument, abbreviate, child_path

# A symlink to the one source of truth, schemas/saxdeployment.schema.json (what editors read); a wheel holds the file.
SCHEMA_RESOURCE = "saxdeployment.schema.json"
# Errors about the value itself; the others (a missing or unknown field) are about the mapping that holds it.
_VALUE_ERRORS = frozenset({"type", "enum", "const", "pattern", "minimum", "maximum", "minItems"})

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}


@functools.cache
def schema() -> dict[str, Any]:
    """The SaxDeployment JSON Schema (2020-12), as shipped in the package."""
    return json.loads(_schema_bytes())


@functools.cache
def _schema_bytes() -> bytes:
    return resources.files("reconciler.spec").joinpath(SCHEMA_RESOURCE).read_bytes()


def _is_integer(checker: Any, value: Any) -> bool:
    # JSON Schema counts 2.0 as an integer and jsonschema counts no bool as one; a spec takes integers as written:
    # `nodes: 2.0` or `nodes: .inf` would reach int() in the model and the APIs' int32 fields.
    return isinstance(value, int) and not isinstance(value, bool)


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    strict_types = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    return validators.extend(Draft202012Validator, type_checker=strict_types)(schema())


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    problems: list[SpecProblem]  # one per offending field, in file order
    refused: frozenset[str]  # fields whose value the schema refused: the semantic rules must not read them


def check_schema(document: SpecDocument) -> SchemaCheck:
    """Every schema violation in the document; a value of the wrong type gets that one problem, not its range too.

    A document this check found clean before is not checked again (schema_cache: problems are always found anew)."""
    cache_key = schema_cache.key(document.root, _schema_bytes(), Path(__file__).read_bytes())
    if cache_key is not None and schema_cache.known_clean(cache_key):
        return SchemaCheck([], frozenset())
    errors = list(_validator().iter_errors(document.root))
    if not errors and cache_key is not None:
        schema_cache.remember_clean(cache_key)
    refused = {_field_path(error.absolute_path) for error in errors if error.validator in _VALUE_ERRORS}
    wrong_type = {_field_path(error.absolute_path) for error in errors if error.validator == "type"}
    problems: dict[tuple[str, str], SpecProblem] = {}
    for error in errors:
        if error.validator != "type" and _field_path(error.absolute_path) in wrong_type:
            continue
        for problem in _problems_for(error, document):
            problems.setdefault((problem.field, problem.message), problem)
    return SchemaCheck(sorted(problems.values(), key=lambda problem: (problem.line, problem.column, problem.field)),
                       frozenset(refused))


def _problems_for(error: Any, document: SpecDocument) -> Iterable[SpecProblem]:
    path = _field_path(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        for extra in sorted(set(error.instance) - set(known)):
            yield document.problem(child_path(path, extra), _unknown_field(extra, known), at_key=True)
    elif kind == "required":
        for missing in error.validator_value:
            if missing not in error.instance:
                yield document.problem(path, f"missing required field '{missing}'", at_key=True)
    elif kind == "dependentRequired":
        for section, needed in error.validator_value.items():
            for other in needed:
                if section in error.instance and other not in error.instance:
                    yield document.problem(child_path(path, section),
                                           f"needs the '{other}' section too, which is missing", at_key=True)
    else:
        yield document.problem(path, _message(error))


def _field_path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path = child_path(path, part)
    return path


def _unknown_field(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field '{name}' (did you mean '{close[0]}'?)"
    if known:
        return f"unknown field '{name}'; known fields: {', '.join(known)}"
    return f"unknown field '{name}'"


def describe_value(value: Any) -> str:
    """A value as a user would recognise it from the YAML they wrote."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"  # as YAML writes them
    if isinstance(value, str):
        return abbreviate(value, quoted=True) if value else "an empty string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _message(error: Any) -> str:
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "type":
        wanted = [expected] if isinstance(expected, str) else expected
        return f"expected {' or '.join(_TYPE_NAMES.get(name, name) for name in wanted)}, got {describe_value(value)}"
    if kind == "enum":
        return f"must be one of {', '.join(str(choice) for choice in expected)}, got {describe_value(value)}"
    if kind == "const":
        return f"must be {expected}, got {describe_value(value)}"
    if kind == "minimum":
        return f"must be at least {expected}, got {describe_value(value)}"
    if kind == "maximum":
        return f"must be at most {expected}, got {describe_value(value)}"
    if kind == "minItems":
        return f"needs at least {expected} {'entry' if expected == 1 else 'entries'}"
    if kind == "pattern":
        shape = error.schema.get("patternDescription", f"text matching {expected}")
        return f"expected {shape}, got {describe_value(value)}"
    return error.message
