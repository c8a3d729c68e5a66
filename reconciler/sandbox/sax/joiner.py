"""A model server's membership of its cell (saxml common/location.go): Join the admin whose address location.proto
holds, first shortly after start, again whenever that address changes, and at a long fixed interval.

As in Sax, an admin that comes back at the same address is not joined again until the interval: its refresh
only prunes and assigns the servers that joined it.
"""

from __future__ import annotations

import logging
import threading
import time

import grpc

from reconciler.sandbox.sax.cellfs import SaxFiles
from reconciler.sandbox.sax.periods import Periods
from reconciler.saxproto import admin_pb2, admin_pb2_grpc

_RETRIED = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)  # Sax's JoinShouldRetry

log = logging.getLogger(__name__)


class Joiner:
    def __init__(self, files: SaxFiles, sax_root: str, sax_cell: str, address: str, specs: admin_pb2.ModelServer,
                 periods: Periods):
        self._files = files
        self._root = sax_root
        self._cell = sax_cell
        self._request = admin_pb2.JoinRequest(address=address, model_server=specs)
        self._periods = periods

    def start(self) -> None:
        threading.Thread(target=self._run, name="join", daemon=True).start()

    def _run(self) -> None:
        time.sleep(self._periods.first_join_s)
        joined = None  # the admin address of the last successful Join
        seen = None  # location.proto's content when last read
        next_fixed_join = time.monotonic() + self._periods.rejoin_s
        while True:
            location = self._read_location()
            if location is not None and location != seen:
                seen = location
                if location != joined and self._join(location):
                    joined = location
            if time.monotonic() >= next_fixed_join:
                next_fixed_join = time.monotonic() + self._periods.rejoin_s
                if location is not None and self._join(location):
                    joined = location
            time.sleep(self._periods.location_watch_s)

    def _read_location(self) -> str | None:
        try:
            return self._files.read_location(self._root, self._cell)
        except Exception as error:  # GCS unreachable for a moment: try again at the next poll, as Sax does
            log.error("Reading %s's location failed, retrying later: %s", self._cell, error)
            return None

    def _join(self, admin: str) -> bool:
        give_up = time.monotonic() + self._periods.join_retry_s
        while True:
            try:
                with grpc.insecure_channel(admin) as channel:
                    admin_pb2_grpc.AdminStub(channel).Join(self._request, timeout=self._periods.rpc_timeout_s)
                log.info("Joined %s", admin)
                return True
            except grpc.RpcError as error:
                if error.code() not in _RETRIED or time.monotonic() >= give_up:
                    log.error("Failed to join %s: %s", admin, error.details())
                    return False
            time.sleep(1)  # Sax's retrier backs off between tries
