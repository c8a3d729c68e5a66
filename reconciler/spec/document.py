"""Read one spec file into plain values, keeping the line/column of every value and key; expand ${VAR} on the way."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from reconciler.errors import SaxctlError, SpecProblem
from reconciler.spec.interpolation import InterpolationError, interpolate
from reconciler.spec.model import SourceMap

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# No field takes an integer wider than 64 bits; a wider one is refused while reading, before it reaches a message:
# Python refuses to print an integer of more than 4300 digits (and a hex literal can make one from 3600 characters).
INTEGER_LIMIT = 2**63
_SHOWN_CHARACTERS = 40


def abbreviate(text: str, *, quoted: bool = False) -> str:
    """text as a message quotes it: whole when short, else its start and its length."""
    shown = repr(text[:_SHOWN_CHARACTERS]) if quoted else text[:_SHOWN_CHARACTERS]
    return shown if len(text) <= _SHOWN_CHARACTERS else f"{shown}… ({len(text)} characters)"


def child_path(parent: str, key: str | int) -> str:
    """The field path of a mapping key or list index under parent, in the spec's own names."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


@dataclass
class SpecDocument:
    """A parsed spec: plain values plus where each one (and each mapping key) sits in the file."""

    file: str
    root: Any
    values: dict[str, tuple[int, int]] = field(default_factory=dict)  # field path → (line, col) of its value
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # field path → (line, col) of its key

    def source_map(self) -> SourceMap:
        return SourceMap(file=self.file, positions=dict(self.values))

    def problem(self, field_path: str, message: str, *, at_key: bool = False) -> SpecProblem:
        """A problem at field_path: at its key when asked and known, else at its value or nearest ancestor."""
        if at_key and field_path in self.keys:
            line, column = self.keys[field_path]
        else:
            line, column = SourceMap(self.file, self.values).locate(field_path)
        return SpecProblem(self.file, line, column, field_path, message)


class SpecFileError(SaxctlError):
    """A spec file named on the command line that cannot be opened: a usage error (exit 1), as in Terraform.

    Nothing in it was read, so there is no line or column to give; an invalid spec is a SpecError (exit 3).
    """


def read_spec_files(paths: Sequence[str]) -> list[bytes]:
    """The content of every file, in order; SpecFileError naming each one that cannot be read (before any is parsed).

    A missing file is one of the arguments, not a problem inside a spec.
    """
    contents, unreadable = [], []
    for path in paths:
        try:
            contents.append(_read_bytes(path))
        except SpecFileError as error:
            unreadable.append(error)
    if unreadable:
        hints = [error.hint for error in unreadable if error.hint]
        raise SpecFileError("\n".join(error.message for error in unreadable), hint="\n".join(hints) or None)
    return contents


def _read_bytes(path: str) -> bytes:
    if os.path.isdir(path):
        raise SpecFileError(f"{path} is a directory, not a spec file", hint=_spec_files_in(path))
    try:
        with open(path, "rb") as spec_file:
            return spec_file.read()
    except FileNotFoundError:
        raise SpecFileError(f"spec file {path} does not exist", hint=_close_spec_file(path)) from None
    except PermissionError:
        raise SpecFileError(f"cannot read the spec file {path}: permission denied") from None
    except OSError as error:
        raise SpecFileError(f"cannot read the spec file {path}: {error.strerror or error}") from None


def _close_spec_file(path: str) -> str | None:
    directory, name = os.path.split(path)
    by_stem = {os.path.splitext(candidate)[0]: candidate for candidate in _yaml_files(directory or ".")}
    close = difflib.get_close_matches(os.path.splitext(name)[0], list(by_stem), n=1, cutoff=0.75)
    return f"Did you mean {os.path.join(directory, by_stem[close[0]])}?" if close else None


def _spec_files_in(directory: str) -> str | None:
    names = _yaml_files(directory)
    return f"Name one of its files, e.g. {os.path.join(directory, names[0])}" if names else None


def _yaml_files(directory: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(directory) if name.endswith((".yaml", ".yml")))
    except OSError:
        return []


def read_document(path: str, raw: bytes, environ: Mapping[str, str]) -> tuple[SpecDocument | None, list[SpecProblem]]:
    """Parse the file's content; (None, problems) without a usable top-level mapping, else the document and problems."""
    text, problem = _decode(path, raw)
    if problem is not None:
        return None, [problem]
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        documents = list(yaml.compose_all(text))
    except MarkedYAMLError as error:
        return None, [_syntax_problem(path, error, text)]
    except YAMLError as error:
        return None, [SpecProblem(path, 1, 1, "", f"invalid YAML: {error}")]
    if not documents or (len(documents) == 1 and _is_empty(documents[0])):
        return None, [SpecProblem(path, 1, 1, "", "the file is empty: a spec needs at least apiVersion, kind, "
                                                   "metadata, project and buckets")]
    if len(documents) > 1:
        line, column = _position(documents[1])
        return None, [SpecProblem(path, line, column, "", f"the file holds {len(documents)} YAML documents; "
                                                          "put one spec in each file")]
    root_node = documents[0]
    if root_node.id != "mapping":
        line, column = _position(root_node)
        return None, [SpecProblem(path, line, column, "", "the top level must be a mapping of fields "
                                                          f"(apiVersion, kind, ...), got {_node_kind(root_node)}")]
    builder = _TreeBuilder(SpecDocument(file=path, root=None), yaml, environ)
    builder.document.root = builder.build(root_node, "", ancestors=())
    return builder.document, builder.problems


def _decode(path: str, raw: bytes) -> tuple[str, SpecProblem | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        bad_byte = raw[error.start]
        return "", SpecProblem(path, line, column, "", f"the file is not UTF-8 text: byte 0x{bad_byte:02x} "
                                                         "cannot be decoded; save the spec as UTF-8")


def _syntax_problem(path: str, error: Any, text: str) -> SpecProblem:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    source_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
    what = error.problem or error.context or "cannot parse"
    if error.context and error.problem:
        started = error.context_mark
        if started is not None and started is not mark and (started.line, started.column) != (mark.line, mark.column):
            # The parser stops where the text ends; where the unclosed construct began is what the user must fix.
            what = f"{error.problem} ({error.context} that starts at line {started.line + 1}, column {started.column + 1})"
        else:
            what = f"{error.problem} ({error.context})"
    if "${" in source_line and ("{" in what or "[" in what):
        # Inside {...} or [...], YAML reads the '{' of an unquoted ${VAR} as a nested mapping.
        what += "; inside {...} or [...] quote a reference: \"${VAR}\""
    return SpecProblem(path, line, column, "", f"invalid YAML: {what}")


def _surrogate_message(what: str) -> str:
    # Python keeps a "\ud83d" escape of half a pair, and an environment variable's bytes that are not UTF-8, as lone
    # surrogates: no terminal, file or API can take them.
    return (f"{what} holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is no character (half of a \\uXXXX "
            "pair, or an environment variable that is not UTF-8): write the character itself, or \\U0001F600 for "
            "one beyond U+FFFF")


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= character <= "\udfff" for character in text)


def _is_empty(node: Any) -> bool:
    return node is None or (node.id == "scalar" and node.tag == "tag:yaml.org,2002:null" and node.value in ("", "~"))


def _position(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _node_kind(node: Any) -> str:
    if node.id == "sequence":
        return "a list"
    if node.id == "mapping":
        return "a mapping"
    return f"the scalar {node.value!r}"


class _TreeBuilder:
    """Walks composed YAML nodes into dicts/lists/scalars, recording positions and collecting problems."""

    def __init__(self, document: SpecDocument, yaml: Any, environ: Mapping[str, str]):
        self.document = document
        self.yaml = yaml
        self.environ = environ
        self.problems: list[SpecProblem] = []

    def build(self, node: Any, path: str, ancestors: tuple[int, ...]) -> Any:
        self.document.values.setdefault(path, _position(node))
        if id(node) in ancestors:
            self.problems.append(self.document.problem(path, "an alias refers to a node that contains it"))
            return None
        if node.id == "mapping":
            return self._mapping(node, path, ancestors + (id(node),))
        if node.id == "sequence":
            return [self.build(item, child_path(path, index), ancestors + (id(node),))
                    for index, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: Any, path: str, ancestors: tuple[int, ...]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        first_seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key_position = _position(key_node)
            if key_node.id != "scalar":
                self.problems.append(SpecProblem(self.document.file, *key_position, path,
                                                 f"a key must be a plain name, got {_node_kind(key_node)}"))
                continue
            key = str(key_node.value)
            if _has_surrogate(key):
                self.problems.append(SpecProblem(self.document.file, *key_position, path,
                                                 _surrogate_message("a key")))
                continue
            key_path = child_path(path, key)
            if key in first_seen:
                line, column = first_seen[key]
                self.problems.append(SpecProblem(self.document.file, *key_position, key_path,
                                                 f"duplicate key '{key}' (first at line {line}, column {column})"))
                continue
            first_seen[key] = key_position
            self.document.keys[key_path] = key_position
            if value_node.id == "scalar" and value_node.value == "" and value_node.style is None:
                # An empty value has no text of its own (YAML places it at the next token): point at its key.
                self.document.values[key_path] = key_position
            mapping[key] = self.build(value_node, key_path, ancestors)
        return mapping

    def _scalar(self, node: Any, path: str) -> Any:
        from ruamel.yaml.error import YAMLError
        from ruamel.yaml.nodes import ScalarNode

        if node.tag == _TIMESTAMP_TAG:
            # The spec has no dates; a value that merely looks like one (2024-01-01) stays the text written.
            return node.value
        if node.tag == _STR_TAG and "${" in node.value:
            try:
                expanded = interpolate(node.value, self.environ)
            except InterpolationError as error:
                self.problems.append(self.document.problem(path, str(error)))
                return node.value
            if node.style is not None:  # quoted: the user asked for a string
                return self._text(expanded, path)
            # Unquoted, so type it as YAML would have typed the expanded text: `nodes: ${TPU_NODES}` is an integer.
            tag = self.yaml.resolver.resolve(ScalarNode, expanded, (True, False))
            node = ScalarNode(tag, expanded, start_mark=node.start_mark, end_mark=node.end_mark)
            if tag == _TIMESTAMP_TAG:
                return expanded
        try:
            value = self.yaml.constructor.construct_object(node, deep=True)
        except YAMLError:
            self.problems.append(self.document.problem(path, f"unsupported YAML tag '{node.tag}': write a plain value"))
            return None
        except ValueError as error:
            if node.tag == _INT_TAG:  # more digits than Python converts
                return self._too_large(node, path)
            message = f"cannot read {abbreviate(node.value, quoted=True)}: {error}"
            self.problems.append(self.document.problem(path, message))
            return None
        if isinstance(value, int) and not isinstance(value, bool) and not -INTEGER_LIMIT <= value < INTEGER_LIMIT:
            return self._too_large(node, path)
        return self._text(value, path) if isinstance(value, str) else value

    def _text(self, text: str, path: str) -> str | None:
        """text, unless it holds a lone surrogate (no character can be printed or sent to an API)."""
        if _has_surrogate(text):
            self.problems.append(self.document.problem(path, _surrogate_message("the value")))
            return None
        return text

    def _too_large(self, node: Any, path: str) -> None:
        self.problems.append(self.document.problem(
            path, f"the integer {abbreviate(node.value)} is too large for any field of a spec"))
        return None

