"""The GCS front layer: keeps whole bucket resources itself and streams object traffic to fake-gcs-server."""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from reconciler.sandbox.base import launch
from reconciler.sandbox.base.api_errors import ApiError
from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.gcs import buckets as gcs_buckets, passthrough, rate_limits
from reconciler.sandbox.gcs.bucket_store import BucketStore

# What the layer answers itself (buckets, and the generation preconditions of an object's delete and copy, which
# fake-gcs-server ignores); everything else (objects, uploads, downloads, bucket IAM...) streams through to it.
ROUTES = RouteTable((
    route("GET", "/storage/v1/b", "_list", "storage.buckets.list"),
    route("POST", "/storage/v1/b", "_insert", "storage.buckets.insert"),
    route("GET", "/storage/v1/b/{bucket}", "_get", "storage.buckets.get"),
    route("PATCH", "/storage/v1/b/{bucket}", "_patch", "storage.buckets.patch"),
    route("PUT", "/storage/v1/b/{bucket}", "_update", "storage.buckets.update"),
    route("DELETE", "/storage/v1/b/{bucket}", "_delete", "storage.buckets.delete"),
    route("DELETE", "/storage/v1/b/{bucket}/o/{object_name}", "_delete_object", "storage.objects.delete"),
    route("POST", "/storage/v1/b/{bucket}/o/{object_name}/copyTo/b/{target_bucket}/o/{target_name}", "_copy_object",
          "storage.objects.copy"),
    route("PATCH", "/storage/v1/b/{bucket}/o/{object_name}", "_change_object", "storage.objects.patch"),
    route("PUT", "/storage/v1/b/{bucket}/o/{object_name}", "_change_object", "storage.objects.update"),
    # Object ACL writes: refused on a bucket with uniform bucket-level access, as GCS does; else fake-gcs-server's.
    route("POST", "/storage/v1/b/{bucket}/o/{object_name}/acl", "_write_object_acl",
          "storage.objectAccessControls.insert"),
    route("PUT", "/storage/v1/b/{bucket}/o/{object_name}/acl/{entity}", "_write_object_acl",
          "storage.objectAccessControls.update"),
    route("PATCH", "/storage/v1/b/{bucket}/o/{object_name}/acl/{entity}", "_write_object_acl",
          "storage.objectAccessControls.patch"),
    route("DELETE", "/storage/v1/b/{bucket}/o/{object_name}/acl/{entity}", "_write_object_acl",
          "storage.objectAccessControls.delete"),
))
# GCS's words for an object ACL on a bucket with uniform bucket-level access (400 invalid).
UNIFORM_ACCESS_ACL = ("Cannot insert legacy ACL for an object when uniform bucket-level access is enabled. Read more "
                      "at https://cloud.google.com/storage/docs/uniform-bucket-level-access")
# Query parameters that set an object's ACL on an upload, a patch or a copy.
_ACL_PARAMETERS = ("predefinedAcl", "destinationPredefinedAcl")
# The bucket whose object an upload, patch or copy writes (a copy's or rewrite's target).
_WRITTEN_BUCKET = re.compile(r"^/(?:upload/)?storage/v1/b/(?P<bucket>[^/]+)/o(?:/[^/]+/(?:copyTo|rewriteTo)/b/"
                             r"(?P<target>[^/]+)/o/)?")
# GCS's words when a generation precondition does not hold (fake-gcs-server ignores them on a delete).
_PRECONDITION_FAILED = "At least one of the pre-conditions you specified did not hold."
_UPSTREAM_TIMEOUT_S = 60
_MAX_PAGE = 1000
_UPSTREAM_CHECK_S = 1.0
_UPSTREAM_DEAD_AFTER = 3  # consecutive refused connects

log = logging.getLogger(__name__)


_STATUS_QUERY = re.compile(r"bytes \*/\d+")
_UPLOAD_ID = re.compile(r"[?&]upload_id=([^&]+)")


class ResumableOffsets:
    """What fake-gcs-server lacks for resumable uploads: the status query (`PUT` with `Content-Range: bytes */N` and
    no body), which it takes for the end of a streamed upload and commits. GCS answers it with 308 and the Range it
    holds, so a client in another process can continue; we track each open session's offset from the replies we
    relay. A finished session is forgotten (GCS would answer 200 with the object; a client then starts again)."""

    def __init__(self) -> None:
        self._offsets: dict[str, int] = {}
        self._lock = threading.Lock()

    def relayed(self, method: str, upload_id: str | None, response: http.client.HTTPResponse) -> None:
        started = _UPLOAD_ID.search(response.getheader("Location") or "") if method == "POST" else None
        if started and response.status == 200:
            with self._lock:
                self._offsets[started.group(1)] = 0
        elif method == "PUT" and upload_id is not None:
            with self._lock:
                if response.status == 308:
                    found = re.fullmatch(r"bytes=0-(\d+)", response.getheader("Range") or "")
                    self._offsets[upload_id] = int(found.group(1)) + 1 if found else 0
                elif response.status in (200, 201):
                    self._offsets.pop(upload_id, None)

    def offset(self, upload_id: str) -> int | None:
        with self._lock:
            return self._offsets.get(upload_id)


class GcsFrontServer(EmulatorServer):
    def __init__(self, address: tuple[str, int], upstream: str, store: BucketStore):
        super().__init__(address, GcsFrontHandler, "gcs")
        self.resumable = ResumableOffsets()
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.store = store
        # A conditional delete or copy is a read then a write here: one at a time, so two cannot both pass the check.
        self.conditional_writes = threading.Lock()

    def upstream(self) -> http.client.HTTPConnection:
        # One connection per request: nothing can go stale between requests, and loopback connects cost microseconds.
        return passthrough.NoDelayConnection(self.upstream_host, self.upstream_port, timeout=_UPSTREAM_TIMEOUT_S)


class GcsFrontHandler(EmulatorHandler):
    server: GcsFrontServer
    routes = ROUTES

    def health(self) -> dict:
        status, _ = self._upstream_call("GET", "/_internal/healthcheck")
        if status != 200:
            raise ApiError(503, f"fake-gcs-server health check answered {status}")
        return {"upstream": f"http://{self.server.upstream_host}:{self.server.upstream_port}"}

    # --- buckets -------------------------------------------------------------------------------------------------

    def _insert(self, params: dict[str, str]) -> None:
        body = self.read_json()
        project = _required(params, "project")
        gcs_buckets.check_body(body)
        resource = gcs_buckets.new_bucket(body, project)
        store = self.server.store
        with store.lock:
            owner = store.project_of(resource["name"])
            if owner == project:
                raise ApiError(409, "Your previous request to create the named bucket succeeded and you already "
                                    "own it.", "conflict")
            if owner is not None:
                raise ApiError(409, "The requested bucket name is not available. The bucket namespace is shared by "
                                    "all users of the system. Please select a different name and try again.",
                               "conflict")
            # Only the name: fake-gcs-server's filesystem backend refuses versioning, and keeps nothing else.
            status, reply = self._upstream_call("POST", f"/storage/v1/b?project={quote(project)}",
                                                {"name": resource["name"]})
            if status not in (200, 409):  # 409: fake-gcs-server kept its copy while our store lost it
                raise _upstream_error("create", resource["name"], status, reply)
            store.put(project, resource)
        self._send_bucket(200, resource, params, default_projection="noAcl")

    def _get(self, params: dict[str, str], bucket: str) -> None:
        resource = self._existing(bucket)
        gcs_buckets.check_preconditions(resource, params, read=True)
        self._send_bucket(200, resource, params, default_projection="noAcl")

    def _list(self, params: dict[str, str]) -> None:
        project = _required(params, "project")
        try:
            page_size = min(int(params.get("maxResults", _MAX_PAGE)), _MAX_PAGE)
        except ValueError:
            raise ApiError(400, f"Invalid value for maxResults: '{params['maxResults']}'", "invalid") from None
        if page_size < 1:
            raise ApiError(400, f"Invalid value for maxResults: '{params['maxResults']}'", "invalid")
        after = _decode_page_token(params.get("pageToken"))
        buckets = [b for b in self.server.store.list(project, params.get("prefix", "")) if b["name"] > after]
        page = buckets[:page_size]
        projection = self._projection(params, "noAcl")
        reply: dict = {"kind": "storage#buckets"}
        if page:
            reply["items"] = [gcs_buckets.render(b, projection, self._base_url()) for b in page]
        if len(buckets) > page_size:
            reply["nextPageToken"] = base64.urlsafe_b64encode(page[-1]["name"].encode()).decode()
        self.send_json(200, reply)

    def _patch(self, params: dict[str, str], bucket: str) -> None:
        self._write(bucket, params, gcs_buckets.patch_bucket)

    def _update(self, params: dict[str, str], bucket: str) -> None:
        self._write(bucket, params, gcs_buckets.update_bucket)

    def _write(self, name: str, params: dict[str, str], change) -> None:
        body = self.read_json()
        gcs_buckets.check_body(body)
        store = self.server.store
        with store.lock:
            stored = self._existing(name)
            gcs_buckets.check_preconditions(stored, params, read=False)
            updated = change(stored, body)
            store.put(store.project_of(name), updated)
        self._send_bucket(200, updated, params, default_projection="full")

    def _delete(self, params: dict[str, str], bucket: str) -> None:
        store = self.server.store
        with store.lock:
            stored = self._existing(bucket)
            gcs_buckets.check_preconditions(stored, params, read=False)
            status, reply = self._upstream_call("DELETE", f"/storage/v1/b/{quote(bucket, safe='')}")
            if status == 412:  # fake-gcs-server's "not empty"; GCS answers 409
                raise ApiError(409, "The bucket you tried to delete is not empty.", "conflict")
            if status not in (200, 204, 404):
                raise _upstream_error("delete", bucket, status, reply)
            store.delete(bucket)
        self.send_json(204, None)

    # --- objects: what fake-gcs-server gets wrong ------------------------------------------------------------------

    def _delete_object(self, params: dict[str, str], bucket: str, object_name: str) -> None:
        """ifGenerationMatch: 412 when the live generation differs, as GCS answers (fake-gcs-server deletes whatever
        generation is there). A missing object is fake-gcs-server's 404."""
        with self.server.conditional_writes:
            self._check_generation(params, "ifGenerationMatch", bucket, object_name, params.get("generation"))
            self.unrouted("DELETE")

    def _copy_object(self, params: dict[str, str], bucket: str, object_name: str, target_bucket: str,
                     target_name: str) -> None:
        """ifSourceGenerationMatch and ifGenerationMatch (0: the target must not exist), checked as GCS does."""
        with self.server.conditional_writes:
            self._check_generation(params, "ifSourceGenerationMatch", bucket, object_name,
                                   params.get("sourceGeneration"))
            self._check_generation(params, "ifGenerationMatch", target_bucket, target_name, missing=0)
            self.unrouted("POST")

    def _change_object(self, params: dict[str, str], bucket: str, object_name: str) -> None:
        """An `acl` in the body is an ACL write (what the Python client's blob.acl.save() sends)."""
        raw = self.read_body()
        try:
            sets_acl = "acl" in json.loads(raw or b"{}")
        except (ValueError, TypeError):
            sets_acl = False  # not ours to judge: fake-gcs-server answers a bad body
        connection_input, self.rfile = self.rfile, io.BytesIO(raw)  # the body goes on as it came
        try:
            if sets_acl:
                self._refuse_acl_if_uniform(bucket)
            self.unrouted(self.command)
        finally:
            self.rfile = connection_input

    def _write_object_acl(self, params: dict[str, str], bucket: str, object_name: str, entity: str = "") -> None:
        self._refuse_acl_if_uniform(bucket)
        self.unrouted(self.command)

    def _refuse_acl_if_uniform(self, bucket: str) -> None:
        resource = self.server.store.get(bucket)
        if resource is not None and resource["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"]:
            self._discard_body()
            raise ApiError(400, UNIFORM_ACCESS_ACL, "invalid")

    def fault_error(self, status: int) -> ApiError:
        """A 429 in the words GCS uses for this request: bucket create/delete, bucket change, object change, read."""
        if status == 429:
            return rate_limits.too_many_requests(self.command, self.url_path, self.url_query)
        return super().fault_error(status)

    def _check_generation(self, params: dict[str, str], parameter: str, bucket: str, name: str,
                          version: str | None = None, *, missing: int | None = None) -> None:
        """412 unless the precondition `parameter`, when given, names the object's live generation (`missing` stands
        for it when there is no live object; None: fake-gcs-server's 404 answers then)."""
        expected = params.get(parameter)
        if expected is None:
            return
        if not expected.isdigit():
            raise ApiError(400, f"Invalid value for {parameter}: '{expected}'", "invalid")
        live = self._live_generation(bucket, name, version)
        current = live if live is not None else missing
        if current is not None and current != int(expected):
            self._discard_body()
            raise ApiError(412, _PRECONDITION_FAILED, "conditionNotMet")

    def _live_generation(self, bucket: str, name: str, version: str | None = None) -> int | None:
        query = f"?generation={quote(version)}" if version else ""
        status, reply = self._upstream_call("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
                                                   f"{query}")
        if status == 404:
            return None
        if status != 200:
            raise ApiError(502, f"fake-gcs-server could not read gs://{bucket}/{name}: HTTP {status}")
        return int(json.loads(reply)["generation"])

    def _existing(self, name: str) -> dict:
        resource = self.server.store.get(name)
        if resource is None:
            raise ApiError(404, "The specified bucket does not exist.", "notFound")
        return resource

    def _send_bucket(self, status: int, resource: dict, params: dict[str, str], *, default_projection: str) -> None:
        projection = self._projection(params, default_projection)
        self.send_json(status, gcs_buckets.render(resource, projection, self._base_url()))

    def _projection(self, params: dict[str, str], default: str) -> str:
        projection = params.get("projection", default)
        if projection not in ("full", "noAcl"):
            raise ApiError(400, f"Invalid value for projection: '{projection}'", "invalid")
        return projection

    def _base_url(self) -> str:
        return f"http://{self.headers.get('Host', 'localhost')}"

    def _upstream_call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        connection = self.server.upstream()
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except OSError as error:
            raise ApiError(503, f"fake-gcs-server does not answer: {error}") from None
        finally:
            connection.close()

    # --- everything else: objects, uploads, downloads --------------------------------------------------------------

    def unrouted(self, method: str) -> None:
        written = _WRITTEN_BUCKET.match(self.url_path)
        if method != "GET" and written and any(name in self.query for name in _ACL_PARAMETERS):
            self._refuse_acl_if_uniform(unquote(written["target"] or written["bucket"]))
        upload_id = dict(parse_qsl(self.url_query)).get("upload_id") if self.url_path.startswith("/upload/") else None
        if method == "PUT" and upload_id and _STATUS_QUERY.fullmatch(self.headers.get("Content-Range", "")) \
                and not int(self.headers.get("Content-Length") or 0):
            self._upload_status(upload_id)
            return
        connection = self.server.upstream()
        try:
            try:
                response = passthrough.forward_request(self, connection)
            except OSError as error:
                self.close_connection = True
                raise ApiError(502, f"fake-gcs-server did not answer {method} {self.url_path}: {error}") from None
            self.server.resumable.relayed(method, upload_id, response)
            passthrough.forward_response(self, response)
        finally:
            connection.close()

    def _upload_status(self, upload_id: str) -> None:
        offset = self.server.resumable.offset(upload_id)
        if offset is None:
            raise ApiError(404, "No such upload session (it finished, expired or never existed).", "notFound")
        self.send_json(308, None, {"Range": f"bytes=0-{offset - 1}"} if offset else {})


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ApiError(400, f"Required parameter: {name}", "required")
    return value


def _decode_page_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, f"Invalid pageToken: '{token}'", "invalid") from None


def _upstream_error(action: str, name: str, status: int, reply: bytes) -> ApiError:
    detail = reply.decode(errors="replace").strip()[:300]
    return ApiError(502, f"fake-gcs-server could not {action} bucket {name}: HTTP {status} {detail}")


def main(argv: list[str] | None = None) -> None:
    parser = launch.argument_parser(__doc__)
    parser.add_argument("--upstream", required=True, help="fake-gcs-server's URL, e.g. http://127.0.0.1:4443")
    parser.add_argument("--store", type=Path, required=True, help="JSON file holding the bucket resources")
    args = parser.parse_args(argv)
    launch.start_logging()
    server = GcsFrontServer((args.host, args.port), args.upstream, BucketStore(args.store))
    threading.Thread(target=_exit_when_upstream_dies, args=(server,), daemon=True).start()
    launch.serve(server, args, f"GCS front layer → {args.upstream} (buckets in {args.store})")
    sys.exit(1)  # only the watchdog stops the server


def _exit_when_upstream_dies(server: GcsFrontServer) -> None:
    """Without fake-gcs-server the layer would answer 503s that clients retry for minutes; gone, it fails in
    milliseconds (connection refused) and `saxctl sandbox status` shows it down, so `up` restarts both."""
    failures = 0
    while failures < _UPSTREAM_DEAD_AFTER:
        time.sleep(_UPSTREAM_CHECK_S)
        try:
            socket.create_connection((server.upstream_host, server.upstream_port), timeout=_UPSTREAM_CHECK_S).close()
            failures = 0
        except OSError:
            failures += 1
    log.error("fake-gcs-server at %s:%d stopped answering: exiting so that clients fail fast",
              server.upstream_host, server.upstream_port)
    server.shutdown()


if __name__ == "__main__":
    main()
