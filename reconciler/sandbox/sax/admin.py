"""The sax-admin-server stand-in: `python -m reconciler.sandbox.sax.admin`, with the image's flags and env.

What the image's entrypoint runs, in order (saxml tools/docker/Dockerfile.admin, bin/admin_config.go,
admin/admin.go): admin_config creates the cell's directory under --sax_root (gs://$GSBUCKET/sax-root) and writes
its config.proto (fs_root gs://$GSBUCKET/sax-fs-root); the admin reads the config, creates the cell's directory
under fs_root, restores the published models from state.proto (read only here), serves `sax.Admin`, writes its
"IP:port" to location.proto, then every refresh period assigns, loads and saves state.proto. A failed save ends
the process, as Sax's log.Fatalf does.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time

import grpc

from reconciler.sandbox.base.grpc_errors import GrpcApiError
from reconciler.sandbox.base.grpcbase import GrpcEmulator
from reconciler.sandbox.base.launch import start_logging
from reconciler.sandbox.sax import standin
from reconciler.sandbox.sax.cellfs import SaxFiles, cell_dir
from reconciler.sandbox.sax.manager import Manager
from reconciler.sandbox.sax.naming import SaxError, cell_name, model_name_in_cell, validate_model
from reconciler.sandbox.sax.periods import Periods
from reconciler.sandbox.sax.waitable import Closed
from reconciler.saxproto import admin_pb2

log = logging.getLogger(__name__)


class AdminService:
    """sax.Admin's methods: validation as Sax's admin.go does it, then the manager."""

    def __init__(self, sax_cell: str, manager: Manager):
        self._cell = sax_cell
        self._manager = manager

    def methods(self) -> dict:
        method = standin.sax_method
        return {
            "Publish": method(self.publish, admin_pb2.PublishRequest, read=False),
            "Update": method(self.update, admin_pb2.UpdateRequest, read=False),
            "Unpublish": method(self.unpublish, admin_pb2.UnpublishRequest, read=False),
            "List": method(self.list, admin_pb2.ListRequest, read=True),
            "Stats": method(self.stats, admin_pb2.StatsRequest, read=True),
            "WaitForReady": method(self.wait_for_ready, admin_pb2.WaitForReadyRequest, read=True, with_context=True),
            "Join": method(self.join, admin_pb2.JoinRequest, read=False),
        }

    def publish(self, request: admin_pb2.PublishRequest) -> admin_pb2.PublishResponse:
        self._manager.publish(validate_model(request.model, self._cell), request.model)
        return admin_pb2.PublishResponse()

    def update(self, request: admin_pb2.UpdateRequest) -> admin_pb2.UpdateResponse:
        self._manager.update(validate_model(request.model, self._cell), request.model)
        return admin_pb2.UpdateResponse()

    def unpublish(self, request: admin_pb2.UnpublishRequest) -> admin_pb2.UnpublishResponse:
        self._manager.unpublish(model_name_in_cell(request.model_id, self._cell))
        return admin_pb2.UnpublishResponse()

    def list(self, request: admin_pb2.ListRequest) -> admin_pb2.ListResponse:
        if request.model_id:
            found = [self._manager.list_one(model_name_in_cell(request.model_id, self._cell))]
        else:
            found = self._manager.list_all()
        return admin_pb2.ListResponse(published_models=found)

    def stats(self, request: admin_pb2.StatsRequest) -> admin_pb2.StatsResponse:
        name = model_name_in_cell(request.model_id, self._cell) if request.model_id else None
        by_type: dict[tuple[int, int], int] = {}
        by_path: dict[str, int] = {}
        for server in self._manager.servers(name):
            server_type = (server.chip_type, server.chip_topology)
            by_type[server_type] = by_type.get(server_type, 0) + 1
            for path in server.servable_model_paths:
                by_path[path] = by_path.get(path, 0) + 1
        return admin_pb2.StatsResponse(
            model_server_type_stats=[admin_pb2.ModelServerTypeStat(chip_type=chip, chip_topology=topology,
                                                                   num_replicas=count)
                                     for (chip, topology), count in sorted(by_type.items())],
            num_servers_by_servable_model_path=by_path)

    def wait_for_ready(self, request: admin_pb2.WaitForReadyRequest,
                       context: grpc.ServicerContext) -> admin_pb2.WaitForReadyResponse:
        ready = self._manager.ready_counter(model_name_in_cell(request.model_id, self._cell))
        try:
            if not ready.wait(request.num_replicas, context.is_active):
                raise GrpcApiError("DEADLINE_EXCEEDED", "context deadline exceeded")
        except Closed:
            raise GrpcApiError("CANCELLED", "Canceled") from None  # Sax's bare ErrCanceled: a real status
        return admin_pb2.WaitForReadyResponse()

    def join(self, request: admin_pb2.JoinRequest) -> admin_pb2.JoinResponse:
        if not request.address:
            raise SaxError("JoinRequest.modelet_address cannot be empty", "INVALID_ARGUMENT")
        if not request.HasField("model_server"):
            raise SaxError("JoinRequest.modelet missing", "INVALID_ARGUMENT")
        if request.model_server.chip_type == admin_pb2.ModelServer.CHIP_TYPE_UNKNOWN:
            raise SaxError("Modelet.chip_type cannot be unknown", "INVALID_ARGUMENT")
        if request.model_server.chip_topology == admin_pb2.ModelServer.CHIP_TOPOLOGY_UNKNOWN:
            raise SaxError("Modelet.chip_topology cannot be unknown", "INVALID_ARGUMENT")
        self._manager.join(request.address, request.model_server)
        return admin_pb2.JoinResponse()


def main(argv: list[str] | None = None) -> None:
    bucket = os.environ.get("GSBUCKET", "")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sax_cell", default=os.environ.get("SAX_CELL", "/sax/test"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "10000")))
    parser.add_argument("--sax_root", default=f"gs://{bucket}/sax-root" if bucket else os.environ.get("SAX_ROOT", ""))
    parser.add_argument("--fs_root", default=f"gs://{bucket}/sax-fs-root" if bucket else "")
    parser.add_argument("--alsologtostderr", action="store_true", help="accepted: the log goes to stderr")
    args = parser.parse_args(argv)
    start_logging()
    if not args.sax_root or not args.fs_root:
        raise SystemExit("sax admin: set GSBUCKET (the admin bucket), or --sax_root and --fs_root")
    try:
        cell_name(args.sax_cell)
    except SaxError as error:
        raise SystemExit(f"sax admin: invalid --sax_cell: {error}") from None
    periods = Periods.from_env()
    files = SaxFiles()

    # admin_config
    cell = cell_dir(args.sax_root, args.sax_cell)
    if not files.dir_exists(cell):
        files.create_dir(cell)
    files.write(f"{cell}/config.proto", admin_pb2.Config(fs_root=args.fs_root).SerializeToString())

    # admin_server
    config = admin_pb2.Config.FromString(files.read(f"{cell}/config.proto") or b"")
    state_dir = cell_dir(config.fs_root, args.sax_cell)
    files.create_dir(state_dir)
    manager = Manager(periods)
    saved = files.read(f"{state_dir}/state.proto")
    if saved is not None:
        manager.restore(admin_pb2.State.FromString(saved))
    log.info("Restored %d published model(s) from %s/state.proto", len(manager.list_all()), state_dir)

    emulator = GrpcEmulator("sax-admin", "sax.Admin")
    emulator.add_service("sax.Admin", AdminService(args.sax_cell, manager).methods())
    address = standin.start(emulator, args.port)
    files.write(f"{cell}/location.proto", admin_pb2.Location(location=address).SerializeToString())
    log.info("Wrote %s to %s/location.proto", address, cell)

    threading.Thread(target=_refresh_forever, args=(manager, files, f"{state_dir}/state.proto", periods),
                     name="refresh", daemon=True).start()
    emulator.serve_forever()


def _refresh_forever(manager: Manager, files: SaxFiles, state_path: str, periods: Periods) -> None:
    while True:
        time.sleep(periods.refresh_s)
        try:
            manager.refresh()
            files.write(state_path, manager.state().SerializeToString())
        except Exception:  # Sax: log.Fatalf("Failed to save manager state"); a stopped clock must not go unseen
            log.exception("Refreshing or saving the manager state to %s failed", state_path)
            os._exit(1)


if __name__ == "__main__":
    main()
