"""What gke.cluster and gke.node_pool share: a change becomes a create, an update, a delete, or a delete then a
create (a replacement: neither a cluster nor a pool can have a twin of the same name meanwhile)."""

from __future__ import annotations

from reconciler.engine.provider import Progress
from reconciler.engine.resource import Action, Change, Observed, Resource
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

    def create(self, resource: Resource, progress: Progress) -> Observed:
        raise NotImplementedError

    def update(self, change: Change, progress: Progress) -> Observed:
        raise NotImplementedError

    def delete(self, path: str, progress: Progress) -> None:
        raise NotImplementedError
