"""Build the GKE and Compute clients: the sandbox when its endpoints are exported, else Google Cloud with ADC.

Both speak REST, in the sandbox and in Google Cloud alike, so that one code path is tested: google-cloud-container
would pick gRPC by default, google-cloud-compute is REST only.
"""

from __future__ import annotations

from reconciler.providers.endpoints import default_credentials, sandbox_credentials, sandbox_endpoint
from reconciler.providers.gke.instance_groups import InstanceGroups
from reconciler.providers.google_rest import rest_api

GKE_ENDPOINT = "SAXCTL_GKE_ENDPOINT"
COMPUTE_ENDPOINT = "SAXCTL_COMPUTE_ENDPOINT"
COMPUTE_ROOT = "https://compute.googleapis.com"


def cluster_manager():
    from google.cloud import container_v1

    return container_v1.ClusterManagerClient(**_rest_options(GKE_ENDPOINT))


def machine_types():
    """compute v1 MachineTypes: importing google.cloud.compute_v1 takes seconds, so only a preflight asks for it."""
    from google.cloud import compute_v1

    return compute_v1.MachineTypesClient(**_rest_options(COMPUTE_ENDPOINT))


def regions():
    from google.cloud import compute_v1

    return compute_v1.RegionsClient(**_rest_options(COMPUTE_ENDPOINT))


def instance_groups() -> InstanceGroups:
    return InstanceGroups(rest_api(COMPUTE_ENDPOINT, COMPUTE_ROOT))


def _rest_options(variable: str) -> dict:
    endpoint = sandbox_endpoint(variable)
    if endpoint:
        # The endpoint keeps its http:// (without a scheme the clients would use https).
        return {"credentials": sandbox_credentials(), "transport": "rest", "client_options": {"api_endpoint": endpoint}}
    return {"credentials": default_credentials(), "transport": "rest"}
