"""Where each Google API is, and with which credentials: real Google Cloud by default, the sandbox when exported.

Real Google Cloud uses Application Default Credentials (no gcloud needed). The sandbox exports one endpoint variable
per API (STORAGE_EMULATOR_HOST, SAXCTL_GKE_ENDPOINT, ...) and, with its Kubernetes control plane, a bearer token
(SAXCTL_SANDBOX_TOKEN) that plays the part of an ADC access token, so the code path is the same on both.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from reconciler.errors import EndpointError

SANDBOX_TOKEN = "SAXCTL_SANDBOX_TOKEN"


def sandbox_endpoint(variable: str) -> str | None:
    """The endpoint the sandbox exported in `variable`, checked to answer; None when it is not set."""
    endpoint = os.environ.get(variable)
    if not endpoint:
        return None
    check_reachable(endpoint if "://" in endpoint else f"http://{endpoint}", variable)
    return endpoint


def sandbox_credentials():
    """What the clients present to the sandbox: its token when it has one, else anonymous."""
    token = os.environ.get(SANDBOX_TOKEN)
    if token:
        from google.oauth2.credentials import Credentials

        return Credentials(token=token)
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


def default_credentials():
    """Application Default Credentials, or an error that says how to get them (or how to use the sandbox)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError:
        raise EndpointError(
            "no Google Cloud credentials found (Application Default Credentials)",
            hint='Run `gcloud auth application-default login`, or try the local sandbox: eval "$(saxctl sandbox up)"',
        ) from None
    return credentials


def check_reachable(endpoint: str, variable: str) -> None:
    """A TCP connect with a short timeout: the clients' own retries would turn a dead endpoint into a long hang."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=3).close()
    except OSError as error:
        raise EndpointError(
            f"cannot reach the endpoint {endpoint} (set by {variable}): {error.strerror or error}",
            hint="Is the sandbox running? `saxctl sandbox status`; start it with: eval \"$(saxctl sandbox up)\"",
        ) from None
