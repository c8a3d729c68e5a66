"""The Resource Manager emulator: cloudresourcemanager v3 projects.get and the project IAM policy, with etags.

Projects: those of --projects exist from the start; any other valid project id is created on first use unless
--no-auto-create (then it answers 403, as the real API does for a project the caller cannot see). Auto-creation is
the default so that each test can work in a project of its own, and specs can take any ${PROJECT_ID}.
A new project's policy has one owner binding (OWNER below): a member saxctl did not add and must never remove.

Control endpoints (beside health, faults and requests):
  GET  /_sandbox/projects        every project with its policy
  POST /_sandbox/policy          {"project": "p", "add": [{"role", "member"}], "remove": [...]}: edit the policy
                                 out of band (the etag moves even with nothing to add or remove)
  POST /_sandbox/deleted-account {"email", "unique_id"}: the IAM emulator deleted this service account; its members
                                 become `deleted:serviceAccount:EMAIL?uid=UNIQUE_ID` in every policy, as IAM shows
                                 the bindings of a deleted principal until it purges them
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from google.cloud import resourcemanager_v3
from google.iam.v1 import iam_policy_pb2, policy_pb2

from reconciler.sandbox.base import launch, proto_json
from reconciler.sandbox.base.api_errors import ApiError, ErrorFormat, bad_request
from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer
from reconciler.sandbox.base.ids import project_number
from reconciler.sandbox.base.operations import rfc3339
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.base.store import ResourceStore, StaleEtag

OWNER = "user:sandbox-owner@example.com"
SEEDED_PROJECTS = ("saxctl-demo", "saxctl-test")  # the specs' and the tests' project ids
_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_MEMBER = re.compile(r"(user|serviceAccount|group|domain|deleted:user|deleted:serviceAccount|deleted:group):[^\s:]+"
                     r"|principal(Set)?://\S+|allUsers|allAuthenticatedUsers")
_ROLE = re.compile(r"(roles|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/roles|organizations/[0-9]+/roles)/[A-Za-z0-9_.]+")
_MASK_PATHS = {"bindings", "etag", "auditConfigs", "audit_configs", "version"}
_DEFAULT_MASK = "bindings,etag"  # setIamPolicy's documented default

ROUTES = RouteTable((
    route("GET", "/v3/projects/{project}", "_get_project", "cloudresourcemanager.projects.get"),
    route("POST", "/v3/projects/{project}:getIamPolicy", "_get_policy", "cloudresourcemanager.projects.getIamPolicy",
          read=True),
    route("POST", "/v3/projects/{project}:setIamPolicy", "_set_policy", "cloudresourcemanager.projects.setIamPolicy"),
))
CONTROLS = RouteTable((
    route("GET", "projects", "_control_projects"),
    route("POST", "policy", "_control_edit_policy"),
    route("POST", "deleted-account", "_control_deleted_account"),
))


class ResourceManagerServer(EmulatorServer):
    error_format = ErrorFormat.RPC
    service = "cloudresourcemanager.googleapis.com"

    def __init__(self, address: tuple[str, int], store: ResourceStore, seeded: Iterable[str] = SEEDED_PROJECTS,
                 auto_create: bool = True):
        super().__init__(address, ResourceManagerHandler, "resourcemanager")
        self.store = store
        self.auto_create = auto_create
        for project_id in seeded:
            self.project(project_id, create=True)

    def project(self, reference: str, *, create: bool | None = None) -> tuple[str, dict, str]:
        """(key, {"project", "policy"}, etag) of a project id or number; 403 when it does not (and may not) exist."""
        with self.store.lock:
            project_id = reference
            if reference.isdigit():
                project_id = next((key.removeprefix("project/") for key, _ in self.store.list("project/")
                                   if project_number(key.removeprefix("project/")) == reference), reference)
            key = f"project/{project_id}"
            stored = self.store.get(key)
            if stored is None and (self.auto_create if create is None else create) and _PROJECT_ID.fullmatch(
                    project_id):
                stored = self.store.create(key, _new_project(project_id))
            if stored is None:
                raise ApiError(403, "The caller does not have permission", status="PERMISSION_DENIED")
            return key, stored.resource, stored.etag


class ResourceManagerHandler(EmulatorHandler):
    server: ResourceManagerServer
    routes = ROUTES
    controls = CONTROLS

    def _get_project(self, query: dict, project: str) -> None:
        _, value, etag = self.server.project(project)
        self._reply(resourcemanager_v3.Project, {**value["project"], "etag": f'W/"{etag}"'})

    def _get_policy(self, query: dict, project: str) -> None:
        request = proto_json.parse_body(self.read_body(), iam_policy_pb2.GetIamPolicyRequest)
        requested = request.get("options", {}).get("requestedPolicyVersion", 0)
        if requested not in (0, 1, 3):
            raise bad_request(f"Invalid requested policy version {requested}: use 1 or 3.",
                              "options.requested_policy_version")
        _, value, etag = self.server.project(project)
        self._reply(policy_pb2.Policy, _policy_reply(value["policy"], etag))

    def _set_policy(self, query: dict, project: str) -> None:
        request = proto_json.parse_body(self.read_body(), iam_policy_pb2.SetIamPolicyRequest)
        if "policy" not in request:
            raise bad_request("Request contains an invalid argument: policy is required.", "policy")
        policy = request["policy"]
        paths = {path.strip() for path in (request.get("updateMask") or _DEFAULT_MASK).split(",") if path.strip()}
        unknown = sorted(paths - _MASK_PATHS)
        if unknown:
            raise bad_request(f"Invalid update_mask path(s) {unknown}: a project policy takes bindings, etag, "
                              "audit_configs and version.", "update_mask")
        bindings = _normalised(policy.get("bindings", []))
        version = policy.get("version", 1)
        if any("condition" in binding for binding in bindings) and version < 3:
            raise bad_request("Policies with conditional role bindings must be of version 3.", "policy.version")
        with self.server.store.lock:
            key, value, etag = self.server.project(project)
            stored_policy = value["policy"]
            supplied = policy.get("etag")
            if "etag" in paths and supplied and supplied != etag:
                raise ApiError(409, "There were concurrent policy changes. Please retry the whole read-modify-write "
                                    f"with exponential backoff. The request's ETag '{_escaped(supplied)}' did not "
                                    f"match the current policy's ETag '{_escaped(etag)}'.", status="ABORTED")
            if "bindings" in paths:
                stored_policy["bindings"] = bindings
            if paths & {"auditConfigs", "audit_configs"}:
                stored_policy["auditConfigs"] = policy.get("auditConfigs", [])
            stored_policy["version"] = max(version, 3 if any("condition" in b for b in stored_policy["bindings"])
                                           else 1)
            stored = self.server.store.put(key, value)
        self._reply(policy_pb2.Policy, _policy_reply(stored.resource["policy"], stored.etag))

    # --- control endpoints ---------------------------------------------------------------------------------------

    def _control_projects(self, query: dict) -> None:
        self.send_json(200, {"projects": [{"projectId": key.removeprefix("project/"),
                                           "policy": _policy_reply(stored.resource["policy"], stored.etag)}
                                          for key, stored in self.server.store.list("project/")]})

    def _control_edit_policy(self, query: dict) -> None:
        try:
            request = json.loads(self.read_body() or b"{}")
        except ValueError as error:
            raise bad_request(f"bad control request body: {error}") from None
        edits = {kind: request.get(kind, []) for kind in ("add", "remove")}
        if not isinstance(request, dict) or not all(isinstance(pairs, list) and all(
                isinstance(pair, dict) and {"role", "member"} <= set(pair) for pair in pairs)
                for pairs in edits.values()):
            raise bad_request('expected {"project": ID, "add": [{"role", "member"}], "remove": [...]}')
        with self.server.store.lock:
            key, value, _ = self.server.project(str(request.get("project", "")), create=True)
            members = {binding["role"]: set(binding["members"]) for binding in value["policy"]["bindings"]
                       if "condition" not in binding}
            for pair in edits["add"]:
                members.setdefault(pair["role"], set()).add(pair["member"])
            for pair in edits["remove"]:
                members.get(pair["role"], set()).discard(pair["member"])
            conditional = [binding for binding in value["policy"]["bindings"] if "condition" in binding]
            value["policy"]["bindings"] = _normalised(
                [{"role": role, "members": sorted(names)} for role, names in members.items()] + conditional)
            stored = self.server.store.put(key, value)
        self.send_json(200, _policy_reply(stored.resource["policy"], stored.etag))

    def _control_deleted_account(self, query: dict) -> None:
        try:
            request = json.loads(self.read_body() or b"{}")
            member, deleted = deleted_member(request["email"], request["unique_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise bad_request(f'expected {{"email", "unique_id"}}: {error}') from None
        changed = []
        with self.server.store.lock:
            for key, stored in self.server.store.list("project/"):
                bindings = stored.resource["policy"]["bindings"]
                if not any(member in binding["members"] for binding in bindings):
                    continue
                for binding in bindings:
                    binding["members"] = sorted(deleted if name == member else name for name in binding["members"])
                self.server.store.put(key, stored.resource)
                changed.append(key.removeprefix("project/"))
        self.send_json(200, {"projects": changed})

    def _reply(self, message_type: type, resource: Mapping) -> None:
        self.send_json(200, proto_json.render(resource, message_type,
                                              int_enums=proto_json.int_enums_requested(self.query)))


def deleted_member(email: str, unique_id: str) -> tuple[str, str]:
    """(the member of a service account, what IAM shows in its place once the account is deleted)."""
    if not isinstance(email, str) or not isinstance(unique_id, str) or not unique_id.isdigit():
        raise ValueError("email and unique_id (decimal digits) are strings")
    return f"serviceAccount:{email}", f"deleted:serviceAccount:{email}?uid={unique_id}"


def _new_project(project_id: str) -> dict:
    now = rfc3339(time.time())
    project = {"name": f"projects/{project_number(project_id)}", "projectId": project_id, "state": "ACTIVE",
               "displayName": project_id, "createTime": now, "updateTime": now}
    return {"project": project, "policy": {"version": 1, "bindings": [{"role": "roles/owner", "members": [OWNER]}]}}


def _normalised(bindings: list[dict]) -> list[dict]:
    """As the API keeps a policy: one binding per role (and condition), members sorted and unique, none empty."""
    merged: dict[str, dict] = {}
    for binding in bindings:
        role = binding.get("role", "")
        if not _ROLE.fullmatch(role):
            raise bad_request(f"Role {role} is not supported for this resource.", "policy.bindings.role")
        for member in binding.get("members", []):
            if not _MEMBER.fullmatch(member):
                raise bad_request(f"Invalid principal {member!r}: expected user:, serviceAccount:, group:, domain:, "
                                  "principal://, principalSet://, allUsers or allAuthenticatedUsers.",
                                  "policy.bindings.members")
        condition = binding.get("condition")
        slot = merged.setdefault(json.dumps([role, condition], sort_keys=True),
                                 {"role": role, "members": set(), **({"condition": condition} if condition else {})})
        slot["members"].update(binding.get("members", []))
    return [{**slot, "members": sorted(slot["members"])}
            for _, slot in sorted(merged.items()) if slot["members"]]


def _policy_reply(policy: Mapping, etag: str) -> dict:
    return {**policy, "etag": etag}


def _escaped(etag: str) -> str:
    """An etag's bytes as the API quotes them in its ABORTED message (octal escapes, as protobuf text does)."""
    try:
        raw = base64.b64decode(etag, validate=True)
    except ValueError:
        return etag
    return "".join(chr(byte) if 0x20 <= byte < 0x7F and chr(byte) not in "'\"\\" else f"\\{byte:03o}"
                   for byte in raw)


def main(argv: list[str] | None = None) -> None:
    parser = launch.argument_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--store", type=Path, required=True, help="JSON file holding the projects and policies")
    parser.add_argument("--projects", default=",".join(SEEDED_PROJECTS),
                        help="comma-separated project ids that exist from the start")
    parser.add_argument("--no-auto-create", dest="auto_create", action="store_false",
                        help="answer 403 for a project not in --projects instead of creating it")
    args = parser.parse_args(argv)
    launch.start_logging()
    seeded = [project for project in args.projects.split(",") if project]
    bad = [project for project in seeded if not _PROJECT_ID.fullmatch(project)]
    if bad:
        parser.error(f"invalid project id(s) in --projects: {bad}")
    server = ResourceManagerServer((args.host, args.port), ResourceStore(args.store), seeded, args.auto_create)
    launch.serve(server, args, f"Resource Manager emulator (state in {args.store})")


if __name__ == "__main__":
    main()
