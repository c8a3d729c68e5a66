"""How saxctl reaches a cluster's apiserver: from the GKE cluster object, or from a kubeconfig when told to.

A GKE cluster says where its apiserver is (`endpoint`) and which CA signed its certificate
(`masterAuth.clusterCaCertificate`); Application Default Credentials give the bearer token GKE accepts. No gcloud,
no kubeconfig. The sandbox takes the same path: its GKE emulator's clusters carry the sandbox apiserver's endpoint
and CA, and its token (SAXCTL_SANDBOX_TOKEN) stands where the ADC token would.

`--kubeconfig/--context` override that for other setups (a proxy, a private endpoint, another credential): the
kubernetes package reads the kubeconfig, exec plugins and client certificates included.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from pathlib import Path

from reconciler.errors import SaxctlError
from reconciler.providers.kubernetes.api import Endpoint

GKE_ENDPOINT = "SAXCTL_GKE_ENDPOINT"  # set by the sandbox: its clusters' apiserver takes the sandbox token


def from_cluster(cluster: str, endpoint: str, ca_certificate: str) -> Endpoint:
    """The apiserver of a GKE cluster: https://ENDPOINT, its CA (base64 PEM, as GKE gives it), ADC's token."""
    try:
        ca_pem = base64.b64decode(ca_certificate, validate=True) if ca_certificate else None
    except binascii.Error:
        raise SaxctlError(f"cluster {cluster}: its CA certificate (masterAuth.clusterCaCertificate) is not "
                          "base64") from None
    return Endpoint(server=f"https://{endpoint}", ca_pem=ca_pem, bearer=_google_token(), where=f"cluster {cluster}")


def _google_token():
    """The bearer token of Google credentials (refreshed when it expires); the sandbox's when it runs the clusters."""
    from reconciler.providers.endpoints import default_credentials, sandbox_credentials

    credentials = sandbox_credentials() if os.environ.get(GKE_ENDPOINT) else default_credentials()
    lock = threading.Lock()

    def bearer() -> str | None:
        with lock:
            if not credentials.valid:
                import google.auth.transport.requests

                credentials.refresh(google.auth.transport.requests.Request())
            return credentials.token

    return bearer


def from_kubeconfig(path: str, context: str | None) -> Endpoint:
    """The cluster a kubeconfig's context names, with its credentials (tokens, client certificates, exec plugins)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    where = f"kubeconfig {path}" + (f" (context {context})" if context else "")
    if not Path(path).expanduser().is_file():
        raise SaxctlError(f"--kubeconfig {path}: no such file")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=str(Path(path).expanduser()), context=context,
                                client_configuration=configuration, persist_config=False)
    except ConfigException as error:
        raise SaxctlError(f"{where}: {error}") from None

    def bearer() -> str | None:
        # "Bearer TOKEN", refreshed first by the loader's hook when an exec plugin's token has expired.
        header = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        return header.split(" ", 1)[1] if header and " " in header else header

    ca_pem = Path(configuration.ssl_ca_cert).read_bytes() if configuration.ssl_ca_cert else None
    client_cert = (configuration.cert_file, configuration.key_file) if configuration.cert_file else None
    return Endpoint(server=configuration.host, ca_pem=ca_pem, bearer=bearer, client_cert=client_cert,
                    verify=bool(configuration.verify_ssl), where=where)
