"""What gke.cluster and gke.node_pool share: a change becomes a create, an update, a delete, or a delete then a
create (a replacement: neither a cluster nor a pool can have a twin of the same name meanwhile); an update writes only
over what the plan read."""

from __future__ import annotations

from reconciler.engine.provider import Progress
from reconciler.engine.resource import Action, Change, Observed, Resource
from reconciler.errors import RemoteError, StalePlanError
from reconciler.providers.gke.diffs import moved_since_plan
from reconciler.providers.gke.instance_groups import InstanceGroups
from reconciler.providers.gke.operations import Operations


class ObjectKind:
    def __init__(self, client, instance_groups: InstanceGroups, operations: Operations):
        self._client = client  # container_v1.ClusterManagerClient
        self._instance_groups = instance_groups
        self._operations = operations

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        if change.action is Action.CREATE:
            return self.create(change.desired, progress)
        if change.action is Action.UPDATE:
            return self.update(change, progress)
        if change.action is Action.REPLACE:
            self.delete(change.observed.remote_id, progress)
            return self.create(change.desired, progress)
        if change.action is Action.DELETE:
            self.delete(change.observed.remote_id, progress)
            return None
        raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")

    def unmoved(self, change: Change):
        """The live object read again just before a write, once checked that no field the change sets moved since
        the plan. The write then carries this read's etag, so GKE refuses it (ABORTED) if the object changes in
        between; the apply retries the change, which comes back here: a concurrent change to what saxctl sets stops
        the change, one to anything else (an auto-upgrade, saxctl's own previous operation) does not.

        When nothing moved at all, this read's etag is the one the plan read. setSize takes no etag (container v1):
        a resize relies on this check alone.
        """
        live, now = self.read_again(change.desired)
        if live is None:
            raise RemoteError(f"{change.desired.remote_id} no longer exists", hint="Run `saxctl plan` again.")
        moved = moved_since_plan(change, now)
        if moved:
            raise StalePlanError(f"{change.address}: {change.desired.remote_id} changed since the plan "
                                 f"({'; '.join(moved)}): saxctl did not overwrite it",
                                 hint="Run `saxctl apply` again: it plans from what is there now.")
        return live

    def read_again(self, resource: Resource) -> tuple[object | None, Observed | None]:
        """The live object and its Observed form, read now."""
        raise NotImplementedError

    def create(self, resource: Resource, progress: Progress) -> Observed:
        raise NotImplementedError

    def update(self, change: Change, progress: Progress) -> Observed:
        raise NotImplementedError

    def delete(self, path: str, progress: Progress) -> None:
        raise NotImplementedError
