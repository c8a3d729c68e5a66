"""The admin's state and its one clock (saxml admin/mgr.go): published models, joined model servers, and the
assignment of one model per server, recomputed every refresh period.

Publish only records a model. Each refresh drops servers whose status could not be read for the prune timeout,
gives each model as many idle servers that list its model path as it asks for (fewer, silently, when there are
not enough), takes extra servers back, issues the loads and unloads, frees the names unpublished before it, and
saves state.proto.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from reconciler.sandbox.sax.joined_server import JoinedServer
from reconciler.sandbox.sax.naming import ModelName, SaxError, model_name, validate_update
from reconciler.sandbox.sax.periods import Periods
from reconciler.sandbox.sax.waitable import Waitable
from reconciler.saxproto import admin_pb2, common_pb2

log = logging.getLogger(__name__)


class _Published:
    def __init__(self, spec: admin_pb2.Model):
        self.spec = spec
        self.ready = Waitable()  # replicas whose Load returned OK, what WaitForReady counts


class Manager:
    def __init__(self, periods: Periods):
        self._periods = periods
        self._lock = threading.RLock()
        self._models: dict[ModelName, _Published] = {}
        self._servers: dict[str, JoinedServer] = {}
        self._assignment: dict[ModelName, list[str]] = {}  # as of the last refresh, loaded servers first
        self._unpublishing: set[ModelName] = set()  # names not publishable again until the next refresh

    # --- the models --------------------------------------------------------------------------------------------

    def publish(self, name: ModelName, spec: admin_pb2.Model) -> None:
        with self._lock:
            if name in self._models:
                raise SaxError(f"model {name.go} already exists", "ALREADY_EXISTS")
            if name in self._unpublishing:
                raise SaxError(f"model {name.go} is being unpublished, please retry later", "ALREADY_EXISTS")
            recorded = admin_pb2.Model()
            recorded.CopyFrom(spec)
            recorded.uuid = os.urandom(16)
            self._models[name] = _Published(recorded)
        log.info("Published model %s with overrides: %s", name, dict(spec.overrides))

    def update(self, name: ModelName, spec: admin_pb2.Model) -> None:
        with self._lock:
            published = self._published(name)
            validate_update(published.spec, spec)
            updated = admin_pb2.Model()
            updated.CopyFrom(spec)
            updated.uuid = published.spec.uuid
            published.spec = updated
            for address in self._assignment.get(name, []):
                server = self._servers.get(address)
                if server is not None:
                    server.update(name, updated)

    def unpublish(self, name: ModelName) -> None:
        with self._lock:
            published = self._published(name)
            self._unpublishing.add(name)
            del self._models[name]
        published.ready.close()

    def list_one(self, name: ModelName) -> admin_pb2.PublishedModel:
        with self._lock:
            return self._published_model(name, self._published(name).spec)

    def list_all(self) -> list[admin_pb2.PublishedModel]:
        with self._lock:
            return [self._published_model(name, self._models[name].spec) for name in sorted(self._models, key=str)]

    def ready_counter(self, name: ModelName) -> Waitable:
        with self._lock:
            return self._published(name).ready

    def find_model(self, name: ModelName) -> admin_pb2.Model | None:
        with self._lock:
            published = self._models.get(name)
            return published.spec if published is not None else None

    # --- the model servers -------------------------------------------------------------------------------------

    def join(self, address: str, specs: admin_pb2.ModelServer) -> None:
        """A new server (or one whose specs changed) is read once, then kept in sync; a known one is a no-op."""
        with self._lock:
            existing = self._servers.get(address)
            if existing is not None and existing.specs == specs:
                return
            if existing is not None:
                log.info("Model server %s has replaced its specs", address)
                del self._servers[address]
        if existing is not None:
            existing.close()
        server = JoinedServer(address, specs, self._periods)
        server.start(self.find_model)
        with self._lock:
            if address in self._servers:  # another Join got there first
                server.close()
                return
            self._servers[address] = server
            for name, status in server.seen().items():
                published = self._models.get(name)
                if published is not None and status == common_pb2.LOADED:
                    published.ready.add(1)
        log.info("Model server %s joined: %s", address, list(specs.servable_model_paths))

    def servers(self, name: ModelName | None) -> list[admin_pb2.ModelServer]:
        """The specs of every joined server, or of those assigned to one model (Stats)."""
        with self._lock:
            if name is None:
                return [server.specs for server in self._servers.values()]
            self._published(name)
            addresses = self._assignment.get(name, [])
            missing = [address for address in addresses if address not in self._servers]
            if missing:
                raise SaxError(f"model server {missing[0]} not found", "NOT_FOUND")
            return [self._servers[address].specs for address in addresses]

    # --- the clock -------------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._prune()
        with self._lock:
            unpublished_before = set(self._unpublishing)
            to_unload, to_load = self._reassign()
            for address, name in to_unload:
                server = self._servers.get(address)
                published = self._models.get(name)
                if server is not None:
                    try:
                        server.unload(name, published.ready if published is not None else None)
                    except SaxError as error:
                        log.error("Failed to unload model %s from model server %s: %s", name, address, error)
            for address, name in to_load:
                try:
                    self._servers[address].load(name, self._models[name].spec, self._models[name].ready)
                except SaxError as error:
                    log.error("Failed to load model %s onto model server %s: %s", name, address, error)
            self._unpublishing -= unpublished_before

    def state(self) -> admin_pb2.State:
        with self._lock:
            return admin_pb2.State(models=[self._models[name].spec for name in sorted(self._models, key=str)])

    def restore(self, state: admin_pb2.State) -> None:
        with self._lock:
            for spec in state.models:
                self._models[model_name(spec.model_id)] = _Published(spec)

    def _prune(self) -> None:
        cutoff = time.monotonic() - self._periods.prune_s
        with self._lock:
            silent = [address for address, server in self._servers.items() if server.last_ping() < cutoff]
            for address in silent:
                server = self._servers.pop(address)
                for name, status in server.seen().items():
                    published = self._models.get(name)
                    if published is not None and status == common_pb2.LOADED:
                        published.ready.add(-1)
                log.info("Pruned model server %s: no status for %.0f s", address, self._periods.prune_s)
                server.close()

    def _reassign(self) -> tuple[list[tuple[str, ModelName]], list[tuple[str, ModelName]]]:
        """ComputeAssignment: keep what each model has (loaded servers first), give back extras, then take idle
        servers that list the model's path, one model per server. Returns (to unload, to load)."""
        current: dict[ModelName, list[str]] = {}
        to_unload: list[tuple[str, ModelName]] = []
        busy: set[str] = set()
        for address in sorted(self._servers):
            for name in self._servers[address].wanted():
                if name in self._models:
                    current.setdefault(name, []).append(address)
                    busy.add(address)
                else:
                    to_unload.append((address, name))
        for name, addresses in current.items():
            addresses.sort(key=lambda address: self._servers[address].seen().get(name) != common_pb2.LOADED)
        idle: dict[str, list[str]] = {}
        for address in sorted(self._servers):
            if address not in busy:
                for path in self._servers[address].specs.servable_model_paths:
                    idle.setdefault(path, []).append(address)
        assignment: dict[ModelName, list[str]] = {}
        to_load: list[tuple[str, ModelName]] = []
        for name in sorted(self._models, key=str):
            spec = self._models[name].spec
            assigned = current.get(name, [])
            while len(assigned) > spec.requested_num_replicas:
                to_unload.append((assigned.pop(), name))
            for address in list(idle.get(spec.model_path, [])):
                if len(assigned) >= spec.requested_num_replicas:
                    break
                assigned.append(address)
                to_load.append((address, name))
                for path in self._servers[address].specs.servable_model_paths:
                    idle[path].remove(address)
            assignment[name] = assigned
        self._assignment = assignment
        return to_unload, to_load

    def _published(self, name: ModelName) -> _Published:
        published = self._models.get(name)
        if published is None:
            raise SaxError(f"model {name.go} not found", "NOT_FOUND")
        return published

    def _published_model(self, name: ModelName, spec: admin_pb2.Model) -> admin_pb2.PublishedModel:
        shown = admin_pb2.Model()
        shown.CopyFrom(spec)
        shown.ClearField("uuid")  # Sax does not show it
        return admin_pb2.PublishedModel(model=shown, modelet_addresses=self._assignment.get(name, []))
