"""Scans for the fidelity table: which client methods saxctl calls, and what the tests check of each API method.

A test covers an error case of a method when one statement of it (or one parametrize row with the test's body) names
both: the method (its id, the client call that sends it, or a URL that only its route answers) and the error (404,
"NOT_FOUND", exceptions.NotFound...); or when it injects a fault with that status on a path only that method's routes
match. The rule under-reports rather than guesses: a URL two routes could answer credits neither.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox.base.routes import RouteTable

_VERBS = {"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "delete": "DELETE", "head": "HEAD"}
_ERROR_NAMES = {"NotFound": "404", "Conflict": "409", "AlreadyExists": "409", "PreconditionFailed": "412",
                "TooManyRequests": "429", "ResourceExhausted": "429", "Aborted": "ABORTED",
                "FailedPrecondition": "FAILED_PRECONDITION"}
_ERROR_STRINGS = {"NOT_FOUND": "404", "notFound": "404", "ALREADY_EXISTS": "409", "conflict": "409",
                  "conditionNotMet": "412", "RESOURCE_EXHAUSTED": "429", "rateLimitExceeded": "429",
                  "ABORTED": "ABORTED", "FAILED_PRECONDITION": "FAILED_PRECONDITION"}
_ERROR_CODES = {404: "404", 409: "409", 412: "412", 429: "429"}
_GRPC_CODES = {"RESOURCE_EXHAUSTED": "429", "NOT_FOUND": "404", "ALREADY_EXISTS": "409", "ABORTED": "ABORTED",
               "FAILED_PRECONDITION": "FAILED_PRECONDITION"}


def called_names(root: Path, *, exclude: Path) -> set[str]:
    """The keys (see call_keys) of every call in the code under root (not under `exclude`), and "id:<method>" for
    each method id saxctl names where it calls an API without a generated client (remote_call("compute...", ...),
    or idempotent(...) which calls it)."""
    keys: set[str] = set()
    for path in root.rglob("*.py"):
        if exclude in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                keys |= call_keys(node)
                if _call_name(node) in ("remote_call", "idempotent") and node.args and isinstance(node.args[0], ast.Constant):
                    keys.add(f"id:{node.args[0].value}")
    return keys


def python_key(service: str, name: str) -> str:
    """How a client method is looked up: a short name ("get", "list") only with its client's resource, which the
    receiver must name (`regions.get`, `self._machine_types.get`); dict.get is no API call."""
    return name if "_" in name and name != "aggregated_list" else f"{_hint(service)}:{name}"


def call_keys(call: ast.Call) -> set[str]:
    name = _call_name(call)
    receiver = ast.unparse(call.func.value).replace("_", "").lower() if isinstance(call.func, ast.Attribute) else ""
    return {name} | {f"{hint}:{name}" for hint in _HINTS if hint in receiver}


def _hint(service: str) -> str:
    hint = service.lower().removesuffix("s")
    _HINTS.add(hint)
    return hint


_HINTS: set[str] = set()


def routes_checked(tests: Path) -> set[str]:
    """The emulator modules whose ROUTES a test imports (to check each route's verb and path against discovery)."""
    return {node.module for path in tests.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and any(alias.name == "ROUTES" for alias in node.names)}


@dataclass(frozen=True)
class Target:
    """A place a request can land: the verb, a concrete sample path, the path's regex, and the method it reaches."""

    verb: str
    sample: str
    pattern: re.Pattern
    method_id: str


def targets(routes_of: dict[str, RouteTable], storage, storage_methods: Iterable[str]) -> list[Target]:
    found = [Target(route.verb, re.sub(r"\{[^}]+\}", "x1", route.template), route.pattern, route.method_id)
             for routes in routes_of.values() for route in routes if route.method_id]
    for method_id in storage_methods:
        method = storage.method(method_id)
        paths = [storage.service_path + method["path"]]
        upload = method.get("mediaUpload", {}).get("protocols", {}).get("simple", {}).get("path")
        if upload:
            paths.append(upload)
        for path in paths:
            sample = re.sub(r"\{[^}]+\}", "x1", path)
            found.append(Target(method["httpMethod"], sample, _template_regex(path), method_id))
    return found


def mark_coverage(rows: dict, tests: Path, routes_of: dict[str, RouteTable], python_index: dict[str, set[str]],
                  storage_calls: dict[str, tuple[str, ...]], storage) -> None:
    """Add to each row what the tests under `tests` check of its method: body validation and error cases."""
    index = {**{name: set(ids) for name, ids in storage_calls.items()}, **python_index}
    scanner = _Scanner(set(rows), index, targets(routes_of, storage, [m for m in rows if m.startswith("storage.")]),
                       routes_of)
    modules = [ast.parse(path.read_text()) for path in sorted(tests.rglob("*.py"))]
    for module in modules:
        for node in module.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("test_") and not any(
                    "fixture" in ast.unparse(decorator) for decorator in node.decorator_list):
                scanner.helpers[node.name] = node
    checked_schemas: set[str] = set()
    for module in modules:
        for node in module.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            scanner.validation(node, rows)
            checked_schemas |= _checked_schemas(node)
            if node.name.startswith("test_"):
                for method_id, case in scanner.errors(node):
                    rows[method_id].errors.add(case)
    for row in rows.values():
        if row.reply_schema and row.reply_schema in checked_schemas:
            row.validated.append(f"replies: JSON mapping vs iam v1 {row.reply_schema}")


class _Scanner:
    def __init__(self, method_ids: set[str], python_index: dict[str, set[str]], targets_: list[Target],
                 routes_of: dict[str, RouteTable]):
        self.method_ids = method_ids
        self.python_index = python_index
        self.targets = targets_
        self.routes_of = routes_of
        self.helpers: dict[str, ast.FunctionDef] = {}
        self._helper_refs: dict[str, frozenset[str]] = {}
        self._refs: dict[tuple[int, int], set[str]] = {}  # by node: a statement is asked for more than once
        self._urls: dict[str, ast.JoinedStr] = {}  # the f-string each variable of the scanned function holds

    # --- validation ----------------------------------------------------------------------------------------------

    def validation(self, function: ast.FunctionDef, rows: dict) -> None:
        calls = [node for node in ast.walk(function) if isinstance(node, ast.Call)]
        constants = {node.value for node in ast.walk(function)
                     if isinstance(node, ast.Constant) and node.value in self.method_ids}
        for call in calls:
            name = _call_name(call)
            first = call.args[0] if call.args else None
            if name in ("check_response", "checked") or (name == "check_request"):
                kind = "requests" if name == "check_request" else "replies"
                if isinstance(first, ast.Constant) and first.value in self.method_ids:
                    ids = {first.value}
                elif name == "checked" and len(call.args) > 1 and isinstance(call.args[1], ast.Constant):
                    ids = {call.args[1].value} & self.method_ids
                else:
                    ids = constants if kind == "replies" else set()
                for method_id in ids:
                    mark = f"{kind}: discovery schema"
                    if mark not in rows[method_id].validated:
                        rows[method_id].validated.append(mark)

    # --- errors --------------------------------------------------------------------------------------------------

    def errors(self, function: ast.FunctionDef) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        self._urls = {target.id: node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
                      and isinstance(node.value, ast.JoinedStr) for target in node.targets
                      if isinstance(target, ast.Name)}  # endpoint = f"{sandbox.gcs_endpoint}/storage/v1/b"
        self._refs.clear()  # a URL's meaning depends on the function's variables
        body_refs = set().union(*(self.refs(statement) for statement in function.body))
        sent: dict[str, set[str]] = {}  # a variable → what the call assigned to it sent (`reply = call("GET", ...)`)
        for statement in function.body:
            for unit in _units(statement):
                refs = self.refs(unit) or set().union(*(sent.get(node.id, set()) for node in ast.walk(unit)
                                                        if isinstance(node, ast.Name)))
                found |= _pairs(refs, _errors(unit))
            found |= self.faults(statement)
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        sent[target.id] = self.refs(statement.value)
        for row in _parametrize_rows(function):  # a case's error goes with what the case (or else the body) sends
            cases = {self._helper(node.id, 0) for node in ast.walk(row)
                     if isinstance(node, ast.Name) and node.id in self.helpers}
            found |= _pairs(self.refs(row).union(*cases) or body_refs, _errors(row))
            found |= self.faults(row)
        for helper in self._called_helpers(function):
            for statement in self.helpers[helper].body:
                found |= self.faults(statement)
        return found

    def refs(self, node: ast.AST, depth: int = 0) -> set[str]:
        """The API methods a piece of test code sends or names."""
        if (id(node), depth) not in self._refs:
            self._refs[(id(node), depth)] = self._find_refs(node, depth)
        return self._refs[(id(node), depth)]

    def _find_refs(self, node: ast.AST, depth: int) -> set[str]:
        found: set[str] = set()
        for child in ast.walk(node):
            if isinstance(child, ast.Constant) and child.value in self.method_ids:
                found.add(child.value)
            elif isinstance(child, ast.Call):
                name = _call_name(child)
                for key in call_keys(child):
                    found |= self.python_index.get(key, set()) & self.method_ids
                found |= self._url_call(child, name)
                if name in self.helpers and depth < 2:
                    found |= self._helper(name, depth)
        return found

    def faults(self, node: ast.AST) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for call in (child for child in ast.walk(node) if isinstance(child, ast.Call)):
            if _call_name(call) != "inject_fault":
                continue
            keywords = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
            emulator = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else "gcs"
            case = _ERROR_CODES.get(keywords.get("status")) or _GRPC_CODES.get(keywords.get("grpc_code"))
            path = keywords.get("path")
            if case is None or not isinstance(path, str):
                continue
            verb = str(keywords.get("method", "*")).upper()
            try:
                pattern = re.compile(path)
            except re.error:
                continue
            if emulator == "iam":
                hits = {m for m in self.method_ids if m.startswith("/") and pattern.search(m)}
            else:
                prefix = "storage." if emulator == "gcs" else None
                hits = {t.method_id for t in self._targets_of(emulator, prefix) if verb in ("*", t.verb)
                        and pattern.search(t.sample)}
            found |= {(method_id, case) for method_id in hits}
        return found

    def _targets_of(self, emulator: str, prefix: str | None) -> list[Target]:
        routed = {route.method_id for route in self.routes_of.get(emulator, ())}
        return [t for t in self.targets if t.method_id in routed or (prefix and t.method_id.startswith(prefix))]

    def _url_call(self, call: ast.Call, name: str) -> set[str]:
        if name == "request" or name == "call":
            verb_node, url_node = (call.args + [None, None])[:2]
            verb = verb_node.value if isinstance(verb_node, ast.Constant) and isinstance(verb_node.value, str) else ""
        elif name in _VERBS and isinstance(call.func, ast.Attribute) and _root_name(call.func) == "requests":
            verb, url_node = _VERBS[name], (call.args[0] if call.args else None)
        else:
            return set()
        if isinstance(url_node, ast.Name) and url_node.id in self._urls:
            url_node = self._urls[url_node.id]
        if not isinstance(url_node, ast.JoinedStr) or verb.upper() not in _VERBS.values():
            return set()
        expanded = []
        for part in url_node.values:  # a variable holding an f-string is spelled out, one level deep
            named = self._urls.get(part.value.id) if isinstance(part, ast.FormattedValue) and isinstance(
                part.value, ast.Name) else None
            expanded.extend(named.values if named is not None else [part])
        candidates = [t for t in self.targets if t.verb == verb.upper()]
        for parts in (expanded, url_node.values):  # spelled out, then as written: the first that names one method
            concrete = "".join(part.value if isinstance(part, ast.Constant) else "x1" for part in parts)
            exact = {t.method_id for t in candidates
                     if re.search(t.pattern.pattern.lstrip("^"), concrete.split("?")[0])}
            loose = re.compile("".join(re.escape(part.value) if isinstance(part, ast.Constant) else ".*"
                                       for part in parts))
            for hits in (exact, {t.method_id for t in candidates if loose.fullmatch(t.sample)}):
                if len(hits) == 1:
                    return hits
        return set()

    def _helper(self, name: str, depth: int) -> frozenset[str]:
        """What a helper ends with: the call whose error a test of it expects (earlier calls only set the scene)."""
        if name not in self._helper_refs:
            self._helper_refs[name] = frozenset()  # a recursive helper stops here
            self._helper_refs[name] = frozenset(self.refs(self.helpers[name].body[-1], depth + 1))
        return self._helper_refs[name]

    def _called_helpers(self, function: ast.FunctionDef) -> set[str]:
        return {child.id for child in ast.walk(function) if isinstance(child, ast.Name) and child.id in self.helpers}


def _units(statement: ast.stmt) -> list[ast.AST]:
    """Where a statement pairs calls with their errors: the tuples of a list of cases (`[(reply, error), ...]`),
    each on its own; else the whole statement."""
    for node in ast.walk(statement):
        if isinstance(node, ast.List) and len(node.elts) > 1 and all(isinstance(e, ast.Tuple) for e in node.elts):
            return list(node.elts)
    return [statement]


def _pairs(methods: set[str], cases: set[str]) -> set[tuple[str, str]]:
    return {(method, case) for method in methods for case in cases}


def _errors(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and not isinstance(child.value, bool):
            if isinstance(child.value, int) and child.value in _ERROR_CODES:
                found.add(_ERROR_CODES[child.value])
            elif isinstance(child.value, str):
                if child.value in _ERROR_STRINGS:
                    found.add(_ERROR_STRINGS[child.value])
                if "quota" in child.value.lower():
                    found.add("quota")
        elif isinstance(child, ast.Attribute) and child.attr in _ERROR_NAMES:
            found.add(_ERROR_NAMES[child.attr])
    return found


def _parametrize_rows(function: ast.FunctionDef) -> list[ast.AST]:
    rows: list[ast.AST] = []
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and _call_name(decorator) == "parametrize" and len(decorator.args) > 1 \
                and isinstance(decorator.args[1], (ast.List, ast.Tuple)):
            rows.extend(decorator.args[1].elts)
    return rows


def _checked_schemas(function: ast.FunctionDef) -> set[str]:
    return {call.args[0].value for call in ast.walk(function) if isinstance(call, ast.Call)
            and _call_name(call) == "check" and call.args and isinstance(call.args[0], ast.Constant)}


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _root_name(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _template_regex(path: str) -> re.Pattern:
    regex = "".join(re.escape(literal) + ("(?P<%s>[^/]+)" % name if name else "")
                    for literal, name in re.findall(r"([^{]*)(?:\{([^}]+)\})?", path))
    return re.compile(f"^{regex}$")
