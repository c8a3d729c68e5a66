"""Build the IAM admin client (gRPC) and the Resource Manager client (REST): the sandbox when exported, else Google.

Transports, and why:
- IAM admin (google.cloud.iam_admin_v1.IAMClient) speaks gRPC only: its REST transport is not shipped
  (`transport="rest"` raises KeyError, RECIPES §3). On Google it opens its default TLS channel with Application
  Default Credentials; on the sandbox an explicit insecure channel to SAXCTL_IAM_ENDPOINT (host:port), which needs no
  credentials and opens no TLS (setting only api_endpoint would try TLS and retry for 60 s).
- Resource Manager over REST on both, so the code path the sandbox tests is the one used on Google (the sandbox
  serves REST only): getIamPolicy and setIamPolicy as resourcemanager_v3's REST transport sends them, over
  google-auth's AuthorizedSession (google_rest.py), since importing that package costs more than a no-op plan's
  other work. A 409 arrives as Conflict whatever its status is; policies.py tells ABORTED from the rest by the body.
"""

from __future__ import annotations

from reconciler.providers.endpoints import default_credentials, sandbox_endpoint
from reconciler.providers.google_rest import rest_api


def iam_client():
    from google.cloud.iam_admin_v1 import IAMClient

    target = sandbox_endpoint("SAXCTL_IAM_ENDPOINT")
    if target is None:
        return IAMClient(credentials=default_credentials())
    import grpc
    from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

    return IAMClient(transport=IAMGrpcTransport(channel=grpc.insecure_channel(target)))


def projects_client():
    """Resource Manager's REST API for ProjectPolicies: its two calls without google.cloud.resourcemanager_v3."""
    return rest_api("SAXCTL_RESOURCEMANAGER_ENDPOINT", "https://cloudresourcemanager.googleapis.com")
