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

from reconciler.errors import RetryableError, SaxctlError
from reconciler.providers.kubernetes.api import Endpoint

GKE_ENDPOINT = "SAXCTL_GKE_ENDPOINT"  # set by the sandbox: its clusters' apiserver takes the sandbox token
ADC_LOGIN = ("Log in again with `gcloud auth application-default login` (or point GOOGLE_APPLICATION_CREDENTIALS at "
             "a valid key), then rerun.")


def from_cluster(cluster: str, endpoint: str, ca_certificate: str) -> Endpoint:
    """The apiserver of a GKE cluster: https://ENDPOINT, its CA (base64 PEM, as GKE gives it), ADC's token."""
    try:
        ca_pem = base64.b64decode(ca_certificate, validate=True) if ca_certificate else None
    except binascii.Error:
        raise SaxctlError(f"cluster {cluster}: its CA certificate (masterAuth.clusterCaCertificate) is not "
                          "base64") from None
    return Endpoint(server=f"https://{endpoint}", ca_pem=ca_pem, bearer=_google_token(cluster),
                    where=f"cluster {cluster}")


def _google_token(cluster: str):
    """The bearer token of Google credentials (refreshed when it expires): the sandbox's token when the sandbox runs
    the clusters and exports one, else Application Default Credentials, as on GKE."""
    from reconciler.providers.endpoints import SANDBOX_TOKEN, default_credentials, sandbox_credentials

    sandbox = os.environ.get(GKE_ENDPOINT) and os.environ.get(SANDBOX_TOKEN)
    credentials = sandbox_credentials() if sandbox else default_credentials()
    lock = threading.Lock()

    def bearer() -> str | None:
        import google.auth.exceptions
        import google.auth.transport.requests

        with lock:
            if not credentials.valid:
                try:
                    credentials.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.RefreshError as error:
                    raise SaxctlError(f"cluster {cluster}: the Application Default Credentials saxctl presents to "
                                      f"its apiserver could not be refreshed: {_first_line(error)}",
                                      hint=ADC_LOGIN) from None
                except google.auth.exceptions.TransportError as error:
                    raise RetryableError(f"cluster {cluster}: cannot reach Google's token endpoint to refresh the "
                                         f"Application Default Credentials: {_first_line(error)}") from None
            return credentials.token

    return bearer


def _first_line(error: Exception) -> str:
    """google-auth's RefreshError carries (message, response body): the message says it."""
    return str(error.args[0] if error.args else error).splitlines()[0]


def from_kubeconfig(path: str, context: str | None) -> Endpoint:
    """The cluster a kubeconfig's context names, with its credentials (tokens, client certificates, exec plugins)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    where = f"kubeconfig {path}" + (f" (context {context})" if context else "")
    file = Path(path).expanduser()
    if not file.is_file():
        raise SaxctlError(f"--kubeconfig {path}: no such file")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=str(file), context=context, client_configuration=configuration,
                                persist_config=False)
    except ConfigException as error:
        raise SaxctlError(f"{where}: {error}") from None
    if not configuration.api_key and not configuration.cert_file:
        _check_exec_plugin(file, context, where)

    def bearer() -> str | None:
        # "Bearer TOKEN", refreshed first by the loader's hook when an exec plugin's token has expired.
        header = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        return header.split(" ", 1)[1] if header and " " in header else header

    ca_pem = Path(configuration.ssl_ca_cert).read_bytes() if configuration.ssl_ca_cert else None
    client_cert = (configuration.cert_file, configuration.key_file) if configuration.cert_file else None
    return Endpoint(server=configuration.host, ca_pem=ca_pem, bearer=bearer, client_cert=client_cert,
                    verify=bool(configuration.verify_ssl), where=where)


def _check_exec_plugin(file: Path, context: str | None, where: str) -> None:
    """The kubeconfig gave no credential: when its user has an exec plugin, run it to say why (the kubernetes
    package only logs a plugin's failure, and the apiserver would then answer 401 with no reason)."""
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.exec_provider import ExecProvider
    from kubernetes.config.kube_config import ConfigNode
    from ruamel.yaml import YAML

    document = YAML(typ="safe").load(file.read_text()) or {}
    name = context or document.get("current-context")
    chosen = next((c.get("context") or {} for c in document.get("contexts") or () if c.get("name") == name), {})
    user = next((u.get("user") or {} for u in document.get("users") or () if u.get("name") == chosen.get("user")), {})
    plugin = user.get("exec")
    if not plugin:
        return
    command = " ".join([plugin.get("command") or "", *(plugin.get("args") or ())]).strip()
    try:
        ExecProvider(ConfigNode("exec", plugin), str(file.parent)).run()
    except (ConfigException, OSError) as error:
        raise SaxctlError(f"{where}: its credential plugin `{command}` failed: {error}",
                          hint="Fix what the plugin says (often: log in again with the tool that provides it), "
                               f"check that `{command}` prints an ExecCredential, then rerun.") from None
