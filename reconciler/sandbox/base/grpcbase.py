"""The gRPC side of a sandbox emulator: fault rules, latency and the request log around every method it serves.

The control surface is the one every sandbox emulator has: an HTTP port serving /_sandbox/health, /faults and
/requests (httpbase's server, with no API routes), sharing its FaultSet and RequestLog with the gRPC port.
Not IAM-specific: it moves to reconciler/sandbox/base/ at merge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc

from reconciler.sandbox.base.faults import FaultSet
from reconciler.sandbox.base.api_errors import ApiError
from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer, RequestLog
from reconciler.sandbox.base.grpc_errors import GrpcApiError, fault_error

_WORKERS = 32  # a call held by a latency rule holds a worker: leave room for the parallel calls of an apply

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Method:
    """One RPC: the function answering it (request → reply, or raise GrpcApiError) and its wire codecs."""

    answer: Callable[..., object]
    request_deserializer: Callable[[bytes], object]
    response_serializer: Callable[[object], bytes]
    read: bool  # counted as a read in /_sandbox/requests (Get*, List*...), else a write
    with_context: bool = False  # answer(request, context): a call that blocks watches its client's deadline


class ControlHandler(EmulatorHandler):
    """The control port: /_sandbox/ endpoints only; the API itself is on the gRPC port."""

    server: "ControlServer"

    def handle_api(self, method: str) -> None:
        self._discard_body()
        raise ApiError(404, f"the {self.server.name} emulator serves its API over gRPC at {self.server.grpc_target}; "
                            "this port has only /_sandbox/ endpoints")

    def health(self) -> dict:
        return {"grpc": self.server.grpc_target}


class ControlServer(EmulatorServer):
    def __init__(self, address: tuple[str, int], emulator: "GrpcEmulator", grpc_target: str):
        super().__init__(address, emulator.control_handler, emulator.name)
        self.faults = emulator.faults  # one set of rules and one log for both ports
        self.requests = emulator.requests
        self.grpc_target = grpc_target


class GrpcEmulator:
    """A gRPC server whose every call goes through the fault rules and lands in the request log.

    `api_service` (e.g. iam.googleapis.com) and `messages` (code name → the API's own wording) shape the errors
    that fault rules answer.
    """

    control_handler: type[ControlHandler] = ControlHandler  # a subclass adds its own /_sandbox/ endpoints

    def __init__(self, name: str, api_service: str, messages: dict[str, str] | None = None):
        self.name = name
        self.api_service = api_service
        self.messages = messages or {}
        self.faults = FaultSet()
        self.requests = RequestLog()
        self.methods: dict[str, Method] = {}  # by method path, /package.Service/Method
        self._grpc: grpc.Server | None = None
        self.control: ControlServer | None = None

    def add_service(self, service: str, methods: dict[str, Method]) -> None:
        for method_name, method in methods.items():
            self.methods[f"/{service}/{method_name}"] = method

    def start(self, host: str, grpc_port: int, control_port: int) -> None:
        """Bind the gRPC port first, so that a healthy control port means the API answers too."""
        # gRPC sets SO_REUSEPORT by default: two emulators could then share a port and split its calls.
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=_WORKERS), options=[("grpc.so_reuseport", 0)],
                                 handlers=[_Router(self)])
        target = f"{host}:{grpc_port}"
        try:
            self._grpc.add_insecure_port(target)
        except RuntimeError as error:
            raise OSError(f"cannot bind the gRPC port {target} (address already in use?): {error}") from None
        self._grpc.start()
        self.control = ControlServer((host, control_port), self, target)

    def serve_forever(self) -> None:
        assert self.control is not None, "start() first"
        self.control.serve_forever()

    # --- one call ----------------------------------------------------------------------------------------------

    def call(self, path: str, method: Method, request: object, context: grpc.ServicerContext) -> object:
        """Answer one call: the fault rule that matches (latency, error before or after the write), else the API."""
        started = time.monotonic()
        code = "OK"
        try:
            rule = self.faults.match("POST", path)
            if rule is not None and rule.delay_s:
                time.sleep(rule.delay_s)
            if rule is not None and rule.fails and not rule.after_commit:
                raise fault_error(rule, self.api_service, self.messages)
            reply = method.answer(request, context) if method.with_context else method.answer(request)
            if rule is not None and rule.fails:  # after_commit: the write stays, the client never sees its reply
                raise fault_error(rule, self.api_service, self.messages)
            return reply
        except GrpcApiError as error:
            code = error.code.name
            context.abort_with_status(error.status())
        except Exception:
            log.exception("%s failed", path)
            code = "INTERNAL"
            # A bug of ours: say so (the client reports it) rather than let gRPC answer UNKNOWN without a word.
            context.abort(grpc.StatusCode.INTERNAL, f"the {self.name} emulator failed on {path}; see its log")
        finally:
            # Logged before the reply leaves (it is sent once this returns): a client that got it finds it here.
            self.requests.record("POST", path, "", code, time.monotonic() - started, read=method.read)

    def unimplemented(self, path: str, context: grpc.ServicerContext) -> None:
        self.requests.record("POST", path, "", "UNIMPLEMENTED", 0.0, read=False)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"the {self.name} emulator does not implement {path}")


class _Router(grpc.GenericRpcHandler):
    """Routes by method path; unknown methods too get an answer (UNIMPLEMENTED) and a line in the request log."""

    def __init__(self, emulator: GrpcEmulator):
        self._emulator = emulator

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        path = handler_call_details.method
        method = self._emulator.methods.get(path)
        if method is None:
            return grpc.unary_unary_rpc_method_handler(lambda request, context: self._emulator.unimplemented(
                path, context))
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self._emulator.call(path, method, request, context),
            request_deserializer=method.request_deserializer, response_serializer=method.response_serializer)
