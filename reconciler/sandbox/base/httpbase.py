"""The HTTP server every Python emulator runs: routing, control endpoints, fault injection and a request log."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from reconciler.sandbox.base.api_errors import ApiError, ErrorFormat, default_error
from reconciler.sandbox.base.faults import FaultRule, FaultSet
from reconciler.sandbox.base.routes import Route, RouteTable

CONTROL_PREFIX = "/_sandbox/"
_MAX_LOGGED_REQUESTS = 100_000  # a long benchmark must not grow the log without bound

log = logging.getLogger(__name__)


class RequestLog:
    """The API calls seen since the last reset: what a benchmark counts ("2 reads, 0 writes").

    Each entry: method, path, query, status (0 when no answer was sent), ms until the status line, the discovery
    method id ("" when no route matched), whether it reads, the id of the fault rule that answered (or None), and the
    request body's declared size in bytes (what an upload sent).
    """

    def __init__(self) -> None:
        self._entries: list[dict] = []
        self._lock = threading.Lock()

    def record(self, method: str, path: str, query: str, status: int, seconds: float, *, method_id: str = "",
               read: bool | None = None, fault: int | None = None, body_bytes: int = 0) -> None:
        with self._lock:
            if len(self._entries) < _MAX_LOGGED_REQUESTS:
                self._entries.append({"method": method, "path": path, "query": query, "status": status,
                                      "ms": round(seconds * 1000, 1), "method_id": method_id,
                                      "read": method in ("GET", "HEAD") if read is None else read, "fault": fault,
                                      "bytes": body_bytes})

    def entries(self) -> list[dict]:
        with self._lock:
            return list(self._entries)

    def counts(self) -> dict:
        """The log as /_sandbox/requests serves it: the entries, and how many were reads and writes."""
        entries = self.entries()
        reads = sum(entry.get("read", entry["method"] in ("GET", "HEAD")) for entry in entries)
        return {"requests": entries, "reads": reads, "writes": len(entries) - reads}

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()


class EmulatorServer(ThreadingHTTPServer):
    """One emulator's server. `error_format` is the error body its API writes; `service` names it in errors."""

    daemon_threads = True
    # Clients open many keep-alive connections at once (parallel apply); the default backlog of 5 drops some.
    request_queue_size = 128
    error_format = ErrorFormat.LEGACY
    service = ""  # e.g. container.googleapis.com

    def __init__(self, address: tuple[str, int], handler: type["EmulatorHandler"], name: str):
        super().__init__(address, handler)
        self.name = name
        self.faults = FaultSet()
        self.requests = RequestLog()

    def default_error(self, status: int) -> ApiError:
        return default_error(status, self.error_format, self.service)


class EmulatorHandler(BaseHTTPRequestHandler):
    """Answers the routes of `routes` (handler(query, **path_parameters)) and the control endpoints of `controls`
    under /_sandbox/ beside the shared ones (health, faults, requests); anything else goes to `unrouted(method)`.
    Handlers answer with `send_json`, `send_api_error` or raise ApiError.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, as the Google clients' sessions expect
    server: EmulatorServer
    routes = RouteTable(())
    controls = RouteTable(())  # templates relative to /_sandbox/, e.g. route("GET", "nodes", "_control_nodes")
    _recorded = True  # outside _dispatch (the stdlib's own error replies) nothing is logged
    _started = 0.0
    _route: Route | None = None
    _route_parameters: dict[str, str] = {}
    _fault: int | None = None

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: with Nagle on, the client's delayed ACK adds 40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- what subclasses use -------------------------------------------------------------------------------------

    @property
    def url_path(self) -> str:
        return urlsplit(self.path).path

    @property
    def url_query(self) -> str:
        return urlsplit(self.path).query

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.url_query, keep_blank_values=True))

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> dict:
        raw = self.read_body()
        if not raw.strip():
            return {}
        try:
            parsed = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError(400, f"Invalid JSON payload received. {error}", "parseError") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.", "parseError")
        return parsed

    def send_json(self, status: int, payload: dict | list | None, headers: dict[str, str] | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_api_error(self, error: ApiError) -> None:
        body = None if error.code == 304 else error.body(self.server.error_format)  # a 304 carries no body
        self.send_json(error.code, body, error.headers)

    def handle_api(self, method: str) -> None:
        if self._route is None:
            self.unrouted(method)
            return
        getattr(self, self._route.handler)(self.query, **self._route_parameters)

    def unrouted(self, method: str) -> None:
        """A request no route takes: 404, as Google's front end answers an unknown URL."""
        self._discard_body()
        raise ApiError(404, f"The requested URL {self.url_path} was not found on this server.")

    def health(self) -> dict:
        """Extra health facts (e.g. whether an upstream answers); raise ApiError(503) when unhealthy."""
        return {}

    # --- the plumbing --------------------------------------------------------------------------------------------

    def send_response(self, code: int, message: str | None = None) -> None:
        self._record(code)
        super().send_response(code, message)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's signature)
        log.debug("%s %s", self.address_string(), format % args)

    def _record(self, status: int) -> None:
        """Log the call before its first byte leaves: a client that got its answer always finds it in the log."""
        if not self._recorded and not self.url_path.startswith(CONTROL_PREFIX):
            self._recorded = True
            self.server.requests.record(self.command, self.url_path, self.url_query, status,
                                        time.monotonic() - self._started,
                                        method_id=self._route.method_id if self._route else "",
                                        read=self._route.read if self._route else None, fault=self._fault,
                                        body_bytes=int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        self._started = time.monotonic()
        self._recorded = False
        self._fault = None
        path = self.url_path
        try:
            if path.startswith(CONTROL_PREFIX):
                self._control(method, path[len(CONTROL_PREFIX):])
                return
            self._route, self._route_parameters = self.routes.match(method, path) or (None, {})
            rule = self.server.faults.match(method, path)
            if rule is not None and rule.delay_s:
                time.sleep(rule.delay_s)
            if rule is not None and rule.after_commit:
                self._handle_then_lose_reply(method, rule)
            elif rule is not None and (rule.drop or rule.status is not None):
                self._answer_fault(rule, discard_body=True)
            else:
                self._handle(method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            # A bug of ours: say so in a Google-style 500 (the client reports it) rather than drop the connection
            # (the client would retry it for minutes).
            log.exception("%s %s failed", method, path)
            self.close_connection = True
            if not self._recorded:
                self.send_api_error(ApiError(500, f"the {self.server.name} emulator failed on {method} {path}; "
                                                  "see its log"))
        finally:
            self._record(0)  # no answer was sent: a dropped connection, or the client went away

    def _handle(self, method: str) -> None:
        try:
            self.handle_api(method)
        except ApiError as error:
            self.send_api_error(error)

    def _handle_then_lose_reply(self, method: str, rule: FaultRule) -> None:
        """The request takes effect, its reply goes nowhere, and the client gets the fault instead."""
        self._recorded = True  # the reply that is lost is not what the client saw: log the fault's instead
        real_output = self.wfile
        self.wfile = io.BytesIO()
        try:
            self._handle(method)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception:
            log.exception("%s %s failed (its reply was to be lost anyway)", method, self.url_path)
        finally:
            self.wfile = real_output
        self._recorded = False
        self.close_connection = True  # whether the handler read the whole body is unknown: start afresh
        self._answer_fault(rule, discard_body=False)

    def _answer_fault(self, rule: FaultRule, *, discard_body: bool) -> None:
        self._fault = rule.id
        if rule.drop:
            self._drop()
            return
        if discard_body:
            self._discard_body()
        # A connection this reply ends says so, as a server does: a client that pooled it would send its next
        # request into a closed socket (RemoteDisconnected) instead of opening a new one.
        closing = {"Connection": "close"} if self.close_connection else {}
        if rule.body is not None:
            self.send_json(rule.status, rule.body, {**rule.headers(), **closing})
            return
        error = self.fault_error(rule.status)
        self.send_json(rule.status, error.body(self.server.error_format),
                       {**error.headers, **rule.headers(), **closing})

    def fault_error(self, status: int) -> ApiError:
        """The error a fault rule with this status and no body of its own answers this request with."""
        return self.server.default_error(status)

    def _discard_body(self) -> None:
        """Consume an unanswered request's body so the connection stays usable for the client's next request."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # rare (the Google clients send Content-Length): not worth parsing
        else:
            self.read_body()

    def _drop(self) -> None:
        self._record(0)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _control(self, method: str, what: str) -> None:
        matched = self.controls.match(method, what)
        if matched is not None:
            control, parameters = matched
            try:
                getattr(self, control.handler)(self.query, **parameters)
            except ApiError as error:
                self.send_api_error(error)
            return
        if what == "health" and method in ("GET", "HEAD"):
            try:
                self.send_json(200, {"ok": True, "emulator": self.server.name, **self.health()})
            except ApiError as error:
                self.send_api_error(error)
        elif what == "faults" and method == "GET":
            self.send_json(200, {"rules": self.server.faults.rules()})
        elif what == "faults" and method == "POST":
            try:
                payload = json.loads(self.read_body() or b"[]")
                rules = self.server.faults.add(payload.get("rules", payload) if isinstance(payload, dict) else payload)
            except (ValueError, TypeError) as error:
                self.send_api_error(ApiError(400, f"bad fault rules: {error}"))
                return
            self.send_json(200, {"rules": [rule.to_json() for rule in rules]})
        elif what == "faults" and method == "DELETE":
            self.server.faults.clear()
            self.send_json(200, {"rules": []})
        elif what == "requests" and method == "GET":
            entries = self.server.requests.entries()
            reads = sum(entry["read"] for entry in entries)
            self.send_json(200, {"requests": entries, "reads": reads, "writes": len(entries) - reads})
        elif what == "requests" and method == "DELETE":
            self.server.requests.reset()
            self.send_json(200, {"requests": []})
        else:
            self._discard_body()
            self.send_api_error(ApiError(404, f"no sandbox control endpoint {method} {CONTROL_PREFIX}{what}"))
