"""JSON bodies of the APIs served from protocol buffers, read and written through the API's own message types.

The message types are the ones the Google client libraries ship (the API's published protos), so a request is refused
with the wording of Google's front end (`Unknown name "x" at 'cluster': Cannot find field.`), and a reply cannot hold
a field the API does not define: int64 come out as strings, enums as names, or as numbers when the client asks with
`$alt=json;enum-encoding=int` (what the REST transports of the Python clients do).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from reconciler.sandbox.base.api_errors import bad_request

# Leaves for the walk below: their JSON forms are strings or free values, checked by json_format itself.
_WELL_KNOWN = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
                         "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
                         "google.protobuf.Any", "google.protobuf.BoolValue", "google.protobuf.StringValue",
                         "google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.UInt32Value",
                         "google.protobuf.UInt64Value", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
                         "google.protobuf.BytesValue"})
_INTEGER = re.compile(r"-?[0-9]+")
_INT_RANGES = {FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
               FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
               FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
               FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
               FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1)}
_TYPE_NAMES = {FieldDescriptor.TYPE_BOOL: "TYPE_BOOL", FieldDescriptor.TYPE_STRING: "TYPE_STRING",
               FieldDescriptor.TYPE_BYTES: "TYPE_BYTES", FieldDescriptor.TYPE_DOUBLE: "TYPE_DOUBLE",
               FieldDescriptor.TYPE_FLOAT: "TYPE_FLOAT", FieldDescriptor.TYPE_INT32: "TYPE_INT32",
               FieldDescriptor.TYPE_INT64: "TYPE_INT64", FieldDescriptor.TYPE_UINT32: "TYPE_UINT32",
               FieldDescriptor.TYPE_UINT64: "TYPE_UINT64"}


def message_class(message_type: type) -> type:
    """The protobuf class of a proto-plus type (container_v1.Cluster) or of a protobuf class itself."""
    return message_type.pb() if hasattr(message_type, "pb") else message_type


def parse_body(raw: bytes, message_type: type) -> dict:
    """A request body as a dict of the message (camelCase, enums by name), or ApiError 400 as Google words it."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"Invalid JSON payload received. {error}.") from None
    if not isinstance(value, dict):
        raise bad_request('Invalid JSON payload received. Unknown name "": Root element must be a message.')
    return parse_dict(value, message_type)


def parse_dict(value: dict, message_type: type) -> dict:
    cls = message_class(message_type)
    _check_message(value, cls.DESCRIPTOR, "")
    message = cls()
    try:
        json_format.ParseDict(value, message)
    except json_format.ParseError as error:  # a well-known type's string form (a bad timestamp, say)
        raise bad_request(f"Invalid JSON payload received. {error}") from None
    return json_format.MessageToDict(message)


def render(resource: Mapping, message_type: type, *, int_enums: bool = False) -> dict:
    """A reply through the message type: a field it does not define is a bug of the emulator (ParseError)."""
    message = message_class(message_type)()
    json_format.ParseDict(resource, message)
    return json_format.MessageToDict(message, use_integers_for_enums=int_enums)


def int_enums_requested(query: Mapping[str, str]) -> bool:
    return "enum-encoding=int" in query.get("$alt", "")


def _check_message(value: dict, descriptor: Descriptor, path: str) -> None:
    by_name = {field.json_name: field for field in descriptor.fields}
    by_name.update({field.name: field for field in descriptor.fields})
    for key, item in value.items():
        field = by_name.get(key)
        if field is None:
            where = f" at '{path}'" if path else ""
            raise bad_request(f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.', path)
        if item is not None:  # JSON null leaves a field unset
            _check_field(item, field, f"{path}.{field.name}" if path else field.name)


def _check_field(value: object, field: FieldDescriptor, path: str) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, dict):
            raise _invalid(value, field, path)
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            _check_single(item, value_field, f"{path}[{key}]")
    elif field.is_repeated:
        if not isinstance(value, list):
            raise bad_request(f"Invalid value at '{path}' ({_type_name(field)}), {json.dumps(value)}", path)
        for index, item in enumerate(value):
            _check_single(item, field, f"{path}[{index}]")
    else:
        _check_single(value, field, path)


def _check_single(value: object, field: FieldDescriptor, path: str) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name in _WELL_KNOWN:
            return
        if not isinstance(value, dict):
            raise _invalid(value, field, path)
        _check_message(value, field.message_type, path)
        return
    if kind == FieldDescriptor.TYPE_ENUM:
        names = {item.name for item in field.enum_type.values}
        numbers = {item.number for item in field.enum_type.values}
        if (isinstance(value, str) and value in names) or (_is_int(value) and value in numbers):
            return
        raise _invalid(value, field, path)
    if kind == FieldDescriptor.TYPE_BOOL:
        valid = isinstance(value, bool)
    elif kind in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        valid = isinstance(value, str)
    elif kind in _INT_RANGES:
        number = value if _is_int(value) else int(value) if isinstance(value, str) and _INTEGER.fullmatch(value) else None
        low, high = _INT_RANGES[kind]
        valid = number is not None and low <= number <= high
    else:  # double, float
        valid = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and _is_number_text(value))
    if not valid:
        raise _invalid(value, field, path)


def _invalid(value: object, field: FieldDescriptor, path: str):
    return bad_request(f"Invalid value at '{path}' ({_type_name(field)}), {json.dumps(value)}", path)


def _type_name(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return f"type.googleapis.com/{field.enum_type.full_name}"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return f"type.googleapis.com/{field.message_type.full_name}"
    return _TYPE_NAMES.get(field.type, f"TYPE_{field.type}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
