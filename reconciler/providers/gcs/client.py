"""Build a google-cloud-storage client: the sandbox when STORAGE_EMULATOR_HOST is set, else real GCS with ADC."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from reconciler.errors import EndpointError


# google-cloud-storage otherwise reads each bucket's metadata again in a background thread for its tracing spans:
# API calls (and quota) saxctl does not need.
_NO_BACKGROUND_BUCKET_READS = {"DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA": "true"}


def storage_client(project: str):
    for name, value in _NO_BACKGROUND_BUCKET_READS.items():
        os.environ.setdefault(name, value)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
        _check_reachable(endpoint, "STORAGE_EMULATOR_HOST")
        return storage.Client(
            project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
        )
    return storage.Client(project=project, credentials=default_credentials())


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


def _check_reachable(endpoint: str, variable: str) -> None:
    """A TCP connect with a short timeout: the client's own retries would turn a dead endpoint into a long hang."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=3).close()
    except OSError as error:
        raise EndpointError(
            f"cannot reach the storage endpoint {endpoint} (set by {variable}): {error.strerror or error}",
            hint="Is the sandbox running? `saxctl sandbox status`; start it with: eval \"$(saxctl sandbox up)\"",
        ) from None
