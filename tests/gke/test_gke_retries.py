"""Retries through the real `saxctl` CLI on the sandbox: each idempotent call that fails is sent again alone, within a
time budget (not a count); an endpoint that stops answering and credentials that cannot be refreshed are said as the
user's to fix, naming the API, the object and the endpoint, exit 1, no traceback.

Counts come from the emulators' request logs, never from saxctl's own output.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cli_runner import buckets_spec, saxctl
from gke_support import SPECS, gcp_half

PREFLIGHT = ("compute.regions.get", "compute.machineTypes.get")


def test_a_preflight_read_that_fails_is_retried_alone_and_nothing_that_succeeded_is_read_again(sandbox, world,
                                                                                              tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    machine = f"/compute/v1/projects/{world.project}/zones/us-central1-a/machineTypes/ct5lp-hightpu-4t$"
    sandbox.inject_fault("compute", method="GET", path=machine, status=503, count=2)
    sandbox.inject_fault("compute", method="GET", path=f"/compute/v1/projects/{world.project}/regions/us-central1$",
                         status=503, count=1)
    world.reset_logs()
    planned = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert planned.code == 2, planned.text
    preflight = [call for call in world.calls("compute") if call["method_id"] in PREFLIGHT]
    succeeded = Counter(call["path"] for call in preflight if call["status"] == 200)
    failed = Counter(call["path"] for call in preflight if call["status"] == 503)
    assert sorted(failed.values()) == [1, 2], preflight
    assert set(failed) <= set(succeeded)
    assert set(succeeded.values()) == {1}, f"a read that had succeeded was sent again: {succeeded}"


@pytest.mark.parametrize("rate", [0.15, 0.30])
def test_an_apply_converges_with_503s_on_compute_and_gke_retrying_each_call_by_time(rate, sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    for emulator, seed in (("gke", 91), ("compute", 92)):
        # The first call of each is answered 503 for certain: the test does not rest on the draws firing at all.
        sandbox.inject_fault(emulator, status=503, count=1)
        sandbox.inject_fault(emulator, status=503, probability=rate, seed=seed)
    world.reset_logs()
    applied = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env, timeout=300)
    again = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    calls = world.calls("gke") + world.calls("compute")
    sandbox.clear_faults("gke")
    sandbox.clear_faults("compute")
    assert applied.code == 0, applied.text
    assert again.code == 0, again.text
    faulted = [call for call in calls if call["fault"] is not None]
    assert len(faulted) >= 2, f"only {len(faulted)} of {len(calls)} calls were answered 503"
    assert len(world.handled("clusters.create")) == 1 and len(world.handled("nodePools.create")) == 1
    preflight = [call for call in world.calls("compute") if call["method_id"] in PREFLIGHT and call["status"] == 200]
    per_path = Counter(call["path"] for call in preflight)
    assert len(set(per_path.values())) == 1, f"each preflight read succeeded as often as every other: {per_path}"


class _ClosesAfterFirstConnect:
    """A port that accepts one connection (saxctl's reachability check when it builds a client), then closes: every
    later call meets a refused connection, as when the sandbox is stopped under a running command."""

    def __init__(self):
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(1)
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_once, daemon=True)
        self._thread.start()

    def _accept_once(self):
        connection, _ = self._socket.accept()
        connection.close()
        self._socket.close()


def test_an_endpoint_that_stops_answering_names_the_api_the_object_and_the_endpoint(sandbox, world, tmp_path):
    spec = gcp_half(SPECS / "gptj-v5e-2x2.yaml", tmp_path, world.project)
    closing = _ClosesAfterFirstConnect()
    endpoint = f"http://127.0.0.1:{closing.port}"
    env = {**sandbox.env, "SAXCTL_GKE_ENDPOINT": endpoint, "SAXCTL_RETRY_DEADLINE": "1"}
    failed = saxctl("plan", str(spec), env=env)
    assert failed.code == 1, failed.text
    assert (f"container.projects.locations.clusters.get {world.parent}/clusters/saxml: the endpoint {endpoint} does "
            "not answer (Connection refused) (still failing after 1 s of retries)") in failed.err
    assert "saxctl sandbox status" in failed.err
    assert "Traceback" not in failed.text and "bug in saxctl" not in failed.text


class _RevokedKey(BaseHTTPRequestHandler):
    """An OAuth 2.0 token endpoint answering a service account's token request as Google's does for a key that was
    deleted or disabled."""

    def do_POST(self):  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def _service_account_key(token_uri: str) -> dict:
    """A service account key file as the IAM console downloads it, its token_uri pointing at `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "saxctl-test", "private_key_id": "0123abcd",
            "private_key": pem, "client_email": "deploy@saxctl-test.iam.gserviceaccount.com",
            "client_id": "1234567890", "token_uri": token_uri}


def test_credentials_that_cannot_be_refreshed_say_how_to_get_new_ones(tmp_path, secret_file, unique_name):
    server = HTTPServer(("127.0.0.1", 0), _RevokedKey)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key = secret_file("key.json", json.dumps(_service_account_key(f"http://127.0.0.1:{server.server_port}/token")))
        spec = buckets_spec(tmp_path, "creds", unique_name("a"), unique_name("d"))
        no_sandbox = {variable: "" for variable in ("STORAGE_EMULATOR_HOST", "SAXCTL_GKE_ENDPOINT",
                                                   "SAXCTL_COMPUTE_ENDPOINT", "SAXCTL_IAM_ENDPOINT",
                                                   "SAXCTL_RESOURCEMANAGER_ENDPOINT", "SAXCTL_SANDBOX_TOKEN")}
        failed = saxctl("plan", str(spec), env={**no_sandbox, "GOOGLE_APPLICATION_CREDENTIALS": str(key),
                                                 "SAXCTL_RETRY_DEADLINE": "5"})
    finally:
        server.shutdown()
    assert failed.code == 1, failed.text
    assert "the Google credentials could not be refreshed: invalid_grant: Invalid JWT Signature." in failed.err
    assert "gcloud auth application-default login" in failed.err
    assert "Traceback" not in failed.text and "bug in saxctl" not in failed.text
    assert "PRIVATE KEY" not in failed.text, "the key never reaches output"
