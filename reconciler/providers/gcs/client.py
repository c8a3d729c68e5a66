"""Build a google-cloud-storage client: the sandbox when STORAGE_EMULATOR_HOST is set, else real GCS with ADC."""

from __future__ import annotations

import os

from reconciler.providers.endpoints import default_credentials, sandbox_endpoint

# google-cloud-storage otherwise reads each bucket's metadata again in a background thread for its tracing spans:
# API calls (and quota) saxctl does not need.
_NO_BACKGROUND_BUCKET_READS = {"DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA": "true"}


def storage_client(project: str):
    for name, value in _NO_BACKGROUND_BUCKET_READS.items():
        os.environ.setdefault(name, value)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    emulator = sandbox_endpoint("STORAGE_EMULATOR_HOST")
    if emulator:
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
        return storage.Client(
            project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
        )
    return storage.Client(project=project, credentials=default_credentials())
