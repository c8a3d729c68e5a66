"""The IAM emulator as a process: its state survives a restart, and a taken port is reported as the supervisor
expects (so that `sandbox up` retries with other ports)."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.cloud.iam_admin_v1 import IAMClient
from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport
from iam_support import TIMEOUT_S, create_account, new_project

START_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Emulator:
    """One `python -m reconciler.sandbox.iam.server` process on fresh ports, stopped as the supervisor does."""

    def __init__(self, store: Path, grpc_port: int | None = None):
        self.control_port, self.grpc_port = free_port(), grpc_port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler.sandbox.iam.server", "--port", str(self.control_port),
             "--grpc-port", str(self.grpc_port), "--store", str(store)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.channel: grpc.Channel | None = None

    def wait_healthy(self) -> "Emulator":
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}/_sandbox/health", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the emulator did not start: {self.stop()}")

    def client(self) -> IAMClient:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        return IAMClient(transport=IAMGrpcTransport(channel=self.channel))

    def stop(self) -> str:
        if self.channel is not None:
            self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
        output, _ = self.process.communicate(timeout=10)
        return output


@pytest.fixture
def emulators():
    started: list[Emulator] = []
    yield started
    for emulator in started:
        emulator.stop()


def test_accounts_and_policies_survive_a_restart(tmp_path, emulators):
    store = tmp_path / "accounts.json"
    first = Emulator(store).wait_healthy()
    emulators.append(first)
    iam = first.client()
    account = create_account(iam, new_project(), display_name="kept")
    policy = iam.get_iam_policy(resource=account.name, timeout=TIMEOUT_S)
    policy.bindings.add(role="roles/iam.workloadIdentityUser",
                        members=[f"serviceAccount:{account.project_id}.svc.id.goog[default/sax-sa]"])
    written = iam.set_iam_policy(request={"resource": account.name, "policy": policy}, timeout=TIMEOUT_S)
    first.stop()

    second = Emulator(store).wait_healthy()
    emulators.append(second)
    again = second.client()
    assert again.get_service_account(name=account.name, timeout=TIMEOUT_S) == account
    assert again.get_iam_policy(resource=account.name, timeout=TIMEOUT_S) == written, "same bindings, same etag"


def test_a_taken_grpc_port_exits_saying_address_already_in_use(tmp_path):
    with socket.socket() as squatter:
        # A squatter that allows port sharing: gRPC servers set SO_REUSEPORT by default and would then share the
        # port (and split its calls) instead of failing.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        emulator = Emulator(tmp_path / "accounts.json", grpc_port=squatter.getsockname()[1])
        returncode = emulator.process.wait(timeout=START_TIMEOUT_S)
    assert returncode != 0
    assert "address already in use" in emulator.stop().lower()  # what supervisor._wait_healthy looks for
