"""The size of a node pool: the targetSize of its managed instance groups (compute v1 instanceGroupManagers.get).

container v1 does not report how many nodes a pool has now (initialNodeCount is what it was created with), so its
size is read where GKE keeps it, as Terraform's provider does: one instance group per zone of the pool.

These reads go over google-auth's AuthorizedSession, the HTTP transport google-cloud-compute itself uses, and its
errors become google-api-core exceptions as the client's would: importing google.cloud.compute_v1 loads every
Compute type (5.8 s measured on this project's 2-core machine), a cost every no-op plan would pay for one GET a pool.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from reconciler.providers.google_retry import idempotent

TIMEOUT = 30  # seconds per HTTP request


class InstanceGroups:
    def __init__(self, session, endpoint: str):
        self._session = session  # a google.auth.transport.requests.AuthorizedSession
        self._endpoint = endpoint.rstrip("/")

    def target_size(self, url: str) -> int | None:
        """The targetSize of the instance group at `url` (an instanceGroupUrls entry), None when there is none."""
        from google.api_core import exceptions

        path = urlsplit(url).path  # /compute/v1/projects/P/zones/Z/instanceGroupManagers/NAME
        def read() -> int | None:
            response = self._session.get(self._endpoint + path, timeout=TIMEOUT)
            if response.status_code == 404:
                return None
            if response.status_code >= 400:
                raise exceptions.from_http_response(response)
            return int(response.json().get("targetSize", 0))

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
