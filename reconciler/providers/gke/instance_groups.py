"""The size of a node pool: the targetSize of its managed instance groups (compute v1 instanceGroupManagers.get).

container v1 does not report how many nodes a pool has now (initialNodeCount is what it was created with), so its
size is read where GKE keeps it, as Terraform's provider does: one instance group per zone of the pool.

These reads go over google-auth's AuthorizedSession (google_rest.py): importing google.cloud.compute_v1 loads every
Compute type (5.8 s measured on this project's 2-core machine), a cost every no-op plan would pay for one GET a pool.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from reconciler.providers.google_retry import idempotent


class InstanceGroups:
    def __init__(self, api):
        self._api = api  # a reconciler.providers.google_rest.RestApi of compute

    def target_size(self, url: str) -> int | None:
        """The targetSize of the instance group at `url` (an instanceGroupUrls entry), None when there is none."""
        from google.api_core import exceptions

        path = urlsplit(url).path  # /compute/v1/projects/P/zones/Z/instanceGroupManagers/NAME
        def read() -> int | None:
            try:
                return int(self._api.call("GET", path).get("targetSize", 0))
            except exceptions.NotFound:
                return None

        return idempotent("compute.instanceGroupManagers.get", path.split("/compute/v1/", 1)[-1], read)

    def pool_size(self, pool):
        """A pool's nodes per zone (container_v1.NodePool): see per_zone."""
        return per_zone([self.target_size(url) for url in pool.instance_group_urls])


def per_zone(sizes: list[int | None]):
    """A pool's nodes per zone: one count when every zone's group has that size, the sizes when they differ, None
    when a group is missing."""
    if not sizes or any(size is None for size in sizes):
        return None
    return sizes[0] if len(set(sizes)) == 1 else sizes
