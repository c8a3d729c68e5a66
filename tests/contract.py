"""Check what an emulator accepts and returns against Google's discovery documents (names, JSON types, verbs, paths)."""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from pathlib import Path

_JSON_TYPES = {"string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,), "number": (int, float),
               "integer": (int,)}
_INT64_FORMATS = ("int64", "uint64")  # JSON numbers lose precision past 2**53: discovery types them as strings


class Discovery:
    """One API's discovery document, as shipped by google-api-python-client (RECIPES §4)."""

    def __init__(self, document: dict):
        self.document = document
        self.schemas: dict[str, dict] = document["schemas"]
        self.service_path = "/" + document["servicePath"].strip("/") + "/" if document["servicePath"] else "/"

    @classmethod
    @functools.cache
    def load(cls, api: str, version: str) -> "Discovery":
        import googleapiclient

        path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / f"{api}.{version}.json"
        return cls(json.loads(path.read_text()))

    # --- methods -------------------------------------------------------------------------------------------------

    def methods(self) -> dict[str, dict]:
        """Every method by id, e.g. "storage.buckets.insert" → {httpMethod, path, request, response...}."""
        found: dict[str, dict] = {}

        def walk(resources: dict) -> None:
            for resource in resources.values():
                for method in resource.get("methods", {}).values():
                    found[method["id"]] = method
                walk(resource.get("resources", {}))

        walk(self.document.get("resources", {}))
        return found

    def method(self, method_id: str) -> dict:
        methods = self.methods()
        if method_id not in methods:
            raise KeyError(f"{method_id} is not a method of {self.document['id']}")
        return methods[method_id]

    def path_pattern(self, method_id: str) -> re.Pattern:
        """The URL path a method answers at, as a regex with one named group per path parameter."""
        template = self.method(method_id)["path"]
        if template.startswith("/"):
            full = template
        else:
            full = self.service_path + template
        regex = ""
        for literal, plus, name in re.findall(r"([^{]*)(?:\{(\+?)([^}]+)\})?", full):
            regex += re.escape(literal)
            if name:
                regex += f"(?P<{name}>{'.+' if plus else '[^/]+'})"
        return re.compile(f"^{regex}$")

    def flat_path_pattern(self, method_id: str) -> re.Pattern:
        """Like path_pattern, from the method's flatPath: one segment per parameter ({+name} would match anything)."""
        method = self.method(method_id)
        template = self.service_path + method.get("flatPath", method["path"]).lstrip("/")
        regex = "".join(re.escape(literal) + (f"(?P<{name}>[^/:]+)" if name else "")
                        for literal, name in re.findall(r"([^{]*)(?:\{([^}]+)\})?", template))
        return re.compile(f"^{regex}$")

    def match(self, http_method: str, path: str) -> list[str]:
        """Ids of the methods that answer this verb at this path."""
        return [method_id for method_id, method in self.methods().items()
                if method["httpMethod"] == http_method and self.path_pattern(method_id).match(path)]

    # --- bodies --------------------------------------------------------------------------------------------------

    def check(self, schema: str, value: object) -> list[str]:
        """Problems of `value` against schema `schema` (unknown property, wrong JSON type, bad format): [] if none."""
        problems: list[str] = []
        self._check({"$ref": schema}, value, schema, problems)
        return problems

    def check_request(self, method_id: str, body: dict) -> list[str]:
        """Problems of a request body, each naming the method and the field."""
        request = self.method(method_id).get("request")
        if request is None:
            return [] if not body else [f"{method_id} takes no request body"]
        return [f"{method_id} request {problem}" for problem in self.check(request["$ref"], body)]

    def check_response(self, method_id: str, body: dict) -> list[str]:
        """Problems of a reply body, each naming the method and the field."""
        response = self.method(method_id).get("response")
        if response is None:
            return [] if not body else [f"{method_id} returns no body"]
        return [f"{method_id} response {problem}" for problem in self.check(response["$ref"], body)]

    @staticmethod
    def check_error(method_id: str, body: object, *, canonical_status: bool) -> list[str]:
        """Problems of an error reply: `error.code`, `message` and `errors[]` always; `error.status` (the canonical
        code name) where the API is served from protocol buffers (container, cloudresourcemanager, iam) -- storage
        v1 and compute v1 send the legacy body without it."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return [f"{method_id} error reply: no 'error' object in {body!r}"[:200]]
        problems = [f"{method_id} error reply: error.{key} missing or not {kind.__name__}"
                    for key, kind in (("code", int), ("message", str), ("errors", list))
                    if not isinstance(error.get(key), kind)]
        if canonical_status and not (isinstance(error.get("status"), str) and error["status"].isupper()):
            problems.append(f"{method_id} error reply: error.status missing (the canonical code name, e.g. NOT_FOUND)")
        return problems

    def _check(self, spec: dict, value: object, where: str, problems: list[str]) -> None:
        if "$ref" in spec:
            spec = self.schemas[spec["$ref"]]
        kind = spec.get("type", "any")
        if kind == "any" or value is None:
            return
        expected = _JSON_TYPES[kind]
        if kind == "string" and spec.get("format") in _INT64_FORMATS and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            problems.append(f"{where}: {spec['format']} sent as a JSON number {value!r}; the wire form is a string")
            return
        if not isinstance(value, expected) or (kind in ("integer", "number") and isinstance(value, bool)):
            problems.append(f"{where}: expected {kind}, got {type(value).__name__} {value!r}"[:200])
            return
        if "enum" in spec and value not in spec["enum"]:
            problems.append(f"{where}: {value!r} is not one of {spec['enum']}")
        if kind == "string":
            self._check_format(spec.get("format"), value, where, problems)
        elif kind == "array":
            for index, item in enumerate(value):
                self._check(spec.get("items", {}), item, f"{where}[{index}]", problems)
        elif kind == "object":
            properties = spec.get("properties")
            extra = spec.get("additionalProperties")
            for key, item in value.items():
                if properties is not None and key in properties:
                    self._check(properties[key], item, f"{where}.{key}", problems)
                elif extra is not None:
                    self._check(extra, item, f"{where}.{key}", problems)
                elif properties is not None:
                    problems.append(f"{where}: unknown property {key!r}")

    @staticmethod
    def _check_format(fmt: str | None, value: str, where: str, problems: list[str]) -> None:
        if fmt in _INT64_FORMATS and not re.fullmatch(r"-?\d+", value):
            problems.append(f"{where}: {value!r} is not an {fmt} string")
        elif fmt == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                problems.append(f"{where}: {value!r} is not an RFC 3339 date-time")
