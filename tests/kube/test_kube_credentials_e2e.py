"""Credentials that fail, through the real CLI: expired Application Default Credentials (a token endpoint that
answers 400, as Google's does for a revoked refresh token) and a kubeconfig whose exec plugin fails. They are the
user's to fix: saxctl says what failed and how to fix it, exits 1, and shows no traceback.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sax_world import world  # noqa: F401 (a fixture)


class _RevokedGrant(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def token_endpoint():
    server = HTTPServer(("127.0.0.1", 0), _RevokedGrant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/token"
    server.shutdown()
    server.server_close()


def assert_said_plainly(run) -> None:
    assert run.code == 1, run.text
    assert "Traceback" not in run.text and "bug in saxctl" not in run.text, run.text


def service_account_key(token_uri: str) -> dict:
    """A service-account key file as IAM issues one, its token endpoint on loopback."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "p", "private_key_id": "1", "private_key": pem,
            "client_email": "deleted@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri}


def test_expired_application_default_credentials_say_how_to_log_in_again(world, secret_file, token_endpoint):
    world.apply("--target", f"gke.cluster.{world.cluster}")
    adc = secret_file("adc.json", json.dumps(service_account_key(token_endpoint)))
    # Without the sandbox's token the cluster's apiserver gets what it gets on GKE: the ADC access token.
    planned = world.saxctl("plan", env_overrides={"SAXCTL_SANDBOX_TOKEN": "", "GOOGLE_APPLICATION_CREDENTIALS":
                                                 str(adc)})
    assert_said_plainly(planned)
    assert f"cluster {world.cluster}: the Application Default Credentials saxctl presents to its apiserver could " \
           "not be refreshed: invalid_grant: Token has been expired or revoked." in planned.err, planned.err
    assert "gcloud auth application-default login" in planned.err
    assert "PRIVATE KEY" not in planned.text


def test_a_kubeconfig_whose_exec_plugin_fails_names_the_plugin_and_what_it_said(world, tmp_path):
    world.apply("--target", f"gke.cluster.{world.cluster}")
    sandbox = json.loads(Path(world.sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"]).read_text())
    kubeconfig = tmp_path / "kubeconfig.json"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gke",
        "clusters": [{"name": "gke", "cluster": sandbox["clusters"][0]["cluster"]}],
        "contexts": [{"name": "gke", "context": {"cluster": "gke", "user": "plugin"}}],
        "users": [{"name": "plugin", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "sh", "interactiveMode": "Never",
            "args": ["-c", "echo 'the refresh token has expired: run login-tool auth' >&2; exit 3"]}}}]}))
    planned = world.saxctl("plan", "--kubeconfig", str(kubeconfig))
    assert_said_plainly(planned)
    assert f"kubeconfig {kubeconfig}: its credential plugin `sh -c" in planned.err, planned.err
    assert "process returned 3. the refresh token has expired: run login-tool auth" in planned.err
