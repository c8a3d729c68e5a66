"""`saxctl generate`: ask a published model for text through the Sax HTTP server, as the tutorial's curl does.

The HTTP server has no public address (saxctl makes its Service internal): saxctl reaches one of its pods through the
Kubernetes API's port-forward, then POSTs /generate {"model", "query"}, whose reply is
{"generate_response": [[text, score], ...]} (RECIPES §7).
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Mapping

from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import has_unknown, resolved
from reconciler.errors import RemoteError, SaxctlError
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.gke import resources as gke_resources
from reconciler.providers.kubernetes.manifests import ADMIN_SERVER, HTTP_CONTAINER_PORT
from reconciler.providers.kubernetes.options import KubeOptions
from reconciler.providers.sax import resources as sax_resources
from reconciler.providers.sax.cell import Kube
from reconciler.spec.model import Spec

TIMEOUT_S = 300.0  # a first request also waits for the model's batch and, on a cold server, its compile


def model_params(spec: Spec, providers: ProviderSet, model_name: str) -> Mapping[str, Any]:
    """How to reach the model's cell, with the cluster's endpoint and CA read from GKE."""
    models = {resource.name: resource for resource in sax_resources.desired_resources(spec)}
    if model_name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise SaxctlError(f"model {model_name!r} is not in {spec.source.file} (its models: {known})")
    cluster_address = gke_at.cluster(spec.cluster.name)
    cluster = next(r for r in gke_resources.desired_resources(spec) if r.address == cluster_address)
    live = providers.read(lambda: providers.observe([cluster]).get(cluster_address), f"reading {cluster_address}")
    if live is None or "endpoint" not in live.outputs:
        raise SaxctlError(f"cluster {spec.cluster.name} does not exist or is not running yet",
                          hint=f"Run `saxctl apply {spec.source.file}` first.")
    params = resolved(models[model_name], {cluster_address: live.outputs}).params
    # The admin's Ref only keeps a plan from reading a cell whose admin is not created yet; here it is its name.
    return {**{key: value for key, value in params.items() if not has_unknown(value)}, "admin": ADMIN_SERVER}


def generate(params: Mapping[str, Any], kube_options: KubeOptions, prompt: str) -> dict:
    """The HTTP server's reply to POST /generate for the model of params."""
    kube = Kube(params, kube_options)
    namespace, app = params["namespace"], params["http_server"]
    pods = [pod for pod in kube.pods(namespace, app)
            if (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")]
    if not pods:
        raise RemoteError(f"no running pod of {namespace}/{app} (the Sax HTTP server) in cluster {params['cluster']}",
                          hint=f"`saxctl status` says why; `kubectl -n {namespace} get pods -l app={app}`.")
    pod = pods[0]["metadata"]["name"]
    forward = kube.forward(namespace, pod, HTTP_CONTAINER_PORT)
    host, port = forward.address.rsplit(":", 1)
    where = f"POST /generate of the Sax HTTP server (pod {namespace}/{pod})"
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
        body = json.dumps({"model": params["model_id"], "query": prompt})
        try:
            connection.request("POST", "/generate", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            status, data = response.status, _body(response)
        except (OSError, http.client.HTTPException) as error:
            raise RemoteError(f"{where}: {type(error).__name__}: {error} (through the {forward.what})") from None
        finally:
            connection.close()
    finally:
        forward.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise RemoteError(f"{where}: {status}: {data[:300].decode(errors='replace')}") from None
    if status != 200:
        why = (reply.get("Error") or reply.get("message") or reply.get("detail")) if isinstance(reply, dict) else reply
        raise RemoteError(f"{where}: {status}: {why}")
    return reply


def _body(response: http.client.HTTPResponse) -> bytes:
    """The reply's body. sax-http answers HTTP/1.0 without Content-Length, ending the body by closing the connection;
    a port-forward need not pass the close on (kwok's does not), so a body without a length ends where its JSON
    does."""
    if response.length is not None or response.chunked:
        return response.read()
    data = b""
    while chunk := response.read1(65536):
        data += chunk
        try:
            json.loads(data)
        except ValueError:
            continue
        return data
    return data


def candidates(reply: Any) -> list[tuple[str, float]]:
    """(text, score) pairs of a /generate reply (sax-http v1.0.0 wraps them in generate_response; later ones do not)."""
    items = reply.get("generate_response") if isinstance(reply, dict) else reply
    if not isinstance(items, list) or not all(isinstance(item, list) and len(item) == 2 for item in items):
        raise RemoteError(f"POST /generate answered in a shape saxctl does not know: {json.dumps(reply)[:300]}")
    return [(str(text), float(score)) for text, score in items]
