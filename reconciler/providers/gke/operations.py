"""GKE's long-running operations: start one (waiting out another that holds the cluster), poll it to DONE, find the
one an earlier run left running, and say in one sentence why one failed.

GKE runs one operation per cluster at a time: a second is refused with 400 FAILED_PRECONDITION ("Operation X is
currently ..." or "Cluster is running incompatible operation X"). That is not an error to report but a wait.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable

from reconciler.engine.provider import Progress
from reconciler.errors import RemoteError, RetryableError
from reconciler.providers.google_errors import api_status, remote_call
from reconciler.providers.google_retry import idempotent

TIMEOUT = 30  # seconds per HTTP request
# Polls come at 5% of the time waited so far (a wait overshoots the operation's end by 5% at most), between these.
POLL_SHARE, POLL_MIN_S, POLL_MAX_S = 0.05, 0.25, 10.0
SAY_EVERY_S = 30.0  # a progress line at least this often while an operation runs, besides each change of status
_BUSY = re.compile(r"Please wait and try again|incompatible operation", re.IGNORECASE)
_QUOTA_METRIC = re.compile(r'resource "([A-Z0-9_]+)"')


@dataclass(frozen=True, slots=True)
class ClusterAt:
    """Where a cluster is: what its operations are listed under and named by."""

    project: str
    location: str
    name: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def path(self) -> str:
        return f"{self.parent}/clusters/{self.name}"

    @classmethod
    def of(cls, resource_name: str) -> ClusterAt:
        """From projects/P/locations/L/clusters/C[/nodePools/N]."""
        parts = resource_name.split("/")
        return cls(parts[1], parts[3], parts[5])


@dataclass(frozen=True, slots=True)
class Where:
    """What a failed operation was making, for the one sentence that says what to try."""

    zone: str
    region: str
    machine_type: str


def is_busy(error) -> bool:
    """GKE's "another operation holds this cluster" refusal."""
    return api_status(error) == "FAILED_PRECONDITION" and _BUSY.search(str(error.message or "")) is not None


class Operations:
    def __init__(self, client):
        self._client = client  # container_v1.ClusterManagerClient

    def start(self, method: str, target: str, call: Callable[[], object], cluster: ClusterAt,
              progress: Progress):
        """call() starts an operation on cluster; while another one holds the cluster, wait for it, then try again.

        Waits end at the change's deadline (progress.sleep raises past it).
        """
        while True:
            try:
                with remote_call(method, target, busy=is_busy):
                    return call()
            except RetryableError as error:
                if not error.until_deadline:
                    raise
                running = self.running(cluster)
                if running is None:  # it ended between the refusal and the list
                    progress.sleep(POLL_MIN_S)
                    continue
                progress.update(f"waiting for {_describe(running)} to finish first: GKE runs one operation per "
                                "cluster at a time")
                self.wait(running, cluster, progress)

    def run(self, method: str, target: str, call: Callable[[], object], cluster: ClusterAt, progress: Progress,
            what: str, where: Where):
        """start() one operation and wait until it is done; it, or None when call() started none."""
        operation = self.start(method, target, call, cluster, progress)
        if operation is not None:
            check_done(self.wait(operation, cluster, progress), what, where)
        return operation

    def resume(self, cluster: ClusterAt, kind: str, progress: Progress, what: str, where: Where,
               pool: str | None = None) -> None:
        """Wait for the operation of `kind` under way (one an earlier run started, say), if there is one."""
        running = self.running(cluster, pool=pool, kind=kind)
        if running is not None:
            progress.update(f"resuming: {_describe(running)} is already under way")
            check_done(self.wait(running, cluster, progress), what, where)

    def wait(self, operation, cluster: ClusterAt, progress: Progress):
        """Poll operation until DONE, saying how long it has run; the DONE operation (check its error)."""
        from google.cloud import container_v1

        description = _describe(operation)
        progress.operation(description)
        started = last_said = time.monotonic()
        said_status = None
        while operation.status != container_v1.Operation.Status.DONE:
            elapsed = time.monotonic() - started
            if operation.status != said_status or time.monotonic() - last_said >= SAY_EVERY_S:
                progress.update(f"{description}: {operation.status.name} ({elapsed:.0f}s)")
                said_status, last_said = operation.status, time.monotonic()
            progress.sleep(min(POLL_MAX_S, max(POLL_MIN_S, POLL_SHARE * elapsed)))
            name = f"{cluster.parent}/operations/{operation.name}"
            operation = idempotent("container.projects.locations.operations.get", name,
                                   lambda: self._client.get_operation(name=name, timeout=TIMEOUT, retry=None))
        progress.operation(None)
        return operation

    def running(self, cluster: ClusterAt, pool: str | None = None, kind: str | None = None):
        """The operation under way on the cluster (on one of its pools, with `pool`; of one type, with `kind`)."""
        from google.cloud import container_v1

        target = re.compile(rf"/(zones|locations)/{re.escape(cluster.location)}/clusters/{re.escape(cluster.name)}"
                            rf"(/nodePools/(?P<pool>[^/]+))?$")
        listed = idempotent("container.projects.locations.operations.list", cluster.parent,
                            lambda: self._client.list_operations(parent=cluster.parent, timeout=TIMEOUT,
                                                                 retry=None).operations)
        for operation in listed:
            found = target.search(operation.target_link)
            if (operation.status != container_v1.Operation.Status.DONE and found is not None
                    and (pool is None or found["pool"] == pool)
                    and (kind is None or operation.operation_type.name == kind)):
                return operation
        return None


def check_done(operation, what: str, where: Where) -> None:
    """Raise the reason a DONE operation failed, in one sentence with the zone and what to try."""
    message = operation.error.message or operation.status_message
    if not (operation.error.code or operation.error.message or operation.status_message):
        return
    if "STOCKOUT" in message or "does not have enough resources" in message:
        raise RemoteError(f"{what}: {where.zone} has no {where.machine_type} capacity free right now (stockout); apply "
                          "again later, or move it to another zone that offers it")
    if "quota" in message.lower():
        metric = _QUOTA_METRIC.search(message)
        quota = f" ({metric[1]})" if metric else ""
        raise RemoteError(f"{what}: the quota{quota} of {where.region} does not cover {where.machine_type} here; "
                          f"request more for {where.region}, or move it to another region")
    raise RemoteError(f"{what}: {operation.operation_type.name} {operation.name} failed: {message}")


def unless_exists(create: Callable[[], object]):
    """create(), or None when the object exists already (409 ALREADY_EXISTS: an earlier attempt whose reply was lost,
    or someone else). Over REST a stale etag is a 409 too, ABORTED: that one is raised (and retried)."""
    from google.api_core.exceptions import Conflict

    try:
        return create()
    except Conflict as error:
        if api_status(error) == "ABORTED":
            raise
        return None


def unless_gone(delete: Callable[[], object]):
    """delete(), or None when the object is gone already (an earlier attempt, or someone else, deleted it)."""
    from google.api_core.exceptions import NotFound

    try:
        return delete()
    except NotFound:
        return None


def _describe(operation) -> str:
    return f"{operation.name} ({operation.operation_type.name})"
