"""The admin's view of one joined model server (saxml admin/state.go): the models it wants there, the statuses the
server last reported, and one queue of Load/Unload calls run in order.

A failed Load leaves the model wanted, so the server stays assigned to it (FAILED) and nothing retries it: Sax's
sticky failure. The server's status is read every refresh period; the time of the last good read is what the
admin prunes silent servers by.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from reconciler.sandbox.sax.naming import ModelName, SaxError, go_status_text, model_name
from reconciler.sandbox.sax.periods import Periods
from reconciler.sandbox.sax.waitable import Waitable
from reconciler.saxproto import admin_pb2, common_pb2, modelet_pb2, modelet_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Action:
    kind: str  # "load" or "unload"
    name: ModelName
    spec: admin_pb2.Model
    ready: Waitable | None


class JoinedServer:
    def __init__(self, address: str, specs: admin_pb2.ModelServer, periods: Periods):
        self.address = address
        self.specs = specs
        self._periods = periods
        self._lock = threading.Lock()
        self._wanted: dict[ModelName, admin_pb2.Model] = {}
        self._seen: dict[ModelName, int] = {}  # ModelStatus by model, as last reported
        self._last_ping = time.monotonic()
        self._actions: queue.Queue[_Action | None] = queue.Queue()
        self._closed = threading.Event()
        self._channel = grpc.insecure_channel(address)
        self._stub = modelet_pb2_grpc.ModeletStub(self._channel)

    # --- joining ---------------------------------------------------------------------------------------------------

    def start(self, find_model: Callable[[ModelName], admin_pb2.Model | None]) -> None:
        """Read the server's status once (adopting the published models it already has), then keep it in sync."""
        try:
            statuses = self._get_status()
        except grpc.RpcError as error:
            self._channel.close()
            raise SaxError(f"failed to start a connection with {self.address}: getStatus RPC error: "
                           f"{go_status_text(_code_name(error), error.details() or '')}", None) from None
        published = {name: find_model(name) for name in statuses}
        with self._lock:
            for name, status in statuses.items():
                spec = published[name]
                if spec is None:
                    log.info("Ignoring an unknown model %s with status %s on server %s", name,
                             common_pb2.ModelStatus.Name(status), self.address)
                    continue
                if status in (common_pb2.LOADING, common_pb2.LOADED, common_pb2.FAILED):
                    self._wanted[name] = spec
                self._seen[name] = status
            self._last_ping = time.monotonic()
        threading.Thread(target=self._run_actions, name=f"actions {self.address}", daemon=True).start()
        threading.Thread(target=self._poll_status, name=f"status {self.address}", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._actions.put(None)
        self._channel.close()

    # --- what the admin reads --------------------------------------------------------------------------------------

    def wanted(self) -> set[ModelName]:
        with self._lock:
            return set(self._wanted)

    def seen(self) -> dict[ModelName, int]:
        with self._lock:
            return dict(self._seen)

    def last_ping(self) -> float:
        with self._lock:
            return self._last_ping

    # --- what the admin asks -------------------------------------------------------------------------------------

    def load(self, name: ModelName, spec: admin_pb2.Model, ready: Waitable) -> None:
        with self._lock:
            if name in self._wanted:
                raise SaxError(f"model {name.go} is already loaded", "ALREADY_EXISTS")
            self._wanted[name] = spec
        self._actions.put(_Action("load", name, spec, ready))

    def update(self, name: ModelName, spec: admin_pb2.Model) -> None:
        with self._lock:
            if name in self._wanted:
                self._wanted[name] = spec

    def unload(self, name: ModelName, ready: Waitable | None) -> None:
        with self._lock:
            spec = self._wanted.pop(name, None)
        if spec is None:
            raise SaxError(f"model {name.go} is never loaded", "NOT_FOUND")
        self._actions.put(_Action("unload", name, spec, ready))

    # --- the background work -------------------------------------------------------------------------------------

    def _run_actions(self) -> None:
        while (action := self._actions.get()) is not None:
            if action.kind == "load":
                self._load(action)
            else:
                self._unload(action)

    def _load(self, action: _Action) -> None:
        log.info("Loading model %s onto server %s with overrides %s", action.name, self.address,
                 dict(action.spec.overrides))
        request = modelet_pb2.LoadRequest(model_key=str(action.name), model_path=action.spec.model_path,
                                          checkpoint_path=action.spec.checkpoint_path, acls=action.spec.acls,
                                          overrides=action.spec.overrides)
        try:
            self._stub.Load(request)  # no deadline: a load takes as long as it takes
        except grpc.RpcError as error:
            # Still wanted: the server stays assigned to the model and shows it FAILED. Sax retries nothing.
            log.warning("Failed to load model %s onto server %s: %s", action.name, self.address, error.details())
            return
        if action.ready is not None:
            action.ready.add(1)

    def _unload(self, action: _Action) -> None:
        log.info("Unloading model %s from server %s", action.name, self.address)
        try:
            self._stub.Unload(modelet_pb2.UnloadRequest(model_key=str(action.name)))
        except grpc.RpcError as error:
            log.warning("Failed to unload model %s from server %s (%s)", action.name, self.address,
                        error.details())
            with self._lock:
                self._wanted[action.name] = action.spec  # shows up as a failure, as Sax keeps it
            return
        if action.ready is not None:
            action.ready.add(-1)

    def _poll_status(self) -> None:
        while not self._closed.wait(self._periods.refresh_s):
            try:
                statuses = self._get_status()
            except grpc.RpcError as error:
                log.info("GetStatus of %s failed: %s", self.address, error.details())
                continue
            with self._lock:
                self._seen = {name: status for name, status in statuses.items()
                              if name in self._seen or name in self._wanted}
                self._last_ping = time.monotonic()

    def _get_status(self) -> dict[ModelName, int]:
        reply = self._stub.GetStatus(modelet_pb2.GetStatusRequest(), timeout=self._periods.rpc_timeout_s)
        return {model_name(model.model_key): model.model_status for model in reply.models}


def _code_name(error: grpc.RpcError) -> str:
    code = error.code()
    return code.name if code is not None else "UNKNOWN"
