"""A few Google REST calls without the API's generated client: the same requests over google-auth's
AuthorizedSession (the HTTP transport the REST clients use themselves), answered by google-api-core exceptions as
the clients' are.

For APIs of which saxctl makes a handful of calls and whose client package costs more to import than a no-op plan
spends on everything else: google.cloud.compute_v1 (every Compute type, seconds) and google.cloud.resourcemanager_v3
(every service's async client and aiohttp, 0.15-0.3 s).
"""

from __future__ import annotations

from typing import Any

from reconciler.providers.endpoints import default_credentials, sandbox_credentials, sandbox_endpoint

TIMEOUT = 30  # seconds per HTTP request


class RestApi:
    """One API's root URL (Google's, or the sandbox's endpoint) and an authorized session to it."""

    def __init__(self, session, root: str):
        self._session = session  # a google.auth.transport.requests.AuthorizedSession
        self.root = root.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON reply to METHOD root/path; an HTTP error as the google.api_core.exceptions type of its status."""
        response = self._session.request(method, f"{self.root}/{path.lstrip('/')}", json=body, timeout=TIMEOUT)
        if response.status_code >= 400:
            from google.api_core import exceptions

            raise exceptions.from_http_response(response)
        return response.json() if response.content else {}


def rest_api(variable: str, google_root: str) -> RestApi:
    """The API at the sandbox endpoint exported in `variable` (with its credentials), else at Google with ADC."""
    from google.auth.transport.requests import AuthorizedSession

    endpoint = sandbox_endpoint(variable)
    credentials = sandbox_credentials() if endpoint else default_credentials()
    return RestApi(AuthorizedSession(credentials), endpoint or google_root)
