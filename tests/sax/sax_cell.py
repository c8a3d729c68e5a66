"""A Sax cell for one test: the stand-ins as processes on loopback, against the session sandbox's GCS, with Sax's
clocks scaled down (SAXCTL_SANDBOX_SAX_TIME_SCALE) and the test double of the language model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from reconciler.saxproto import admin_pb2, admin_pb2_grpc, modelet_pb2, modelet_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
CELL = "/sax/test"
WAIT_S = 60.0  # generous: a shared 2-core machine; the scaled refresh is 1 s
FAST = 0.1  # refresh 1 s, prune 2.5 s, first join 0.2 s, location poll 0.5 s


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check: Callable[[], object], timeout_s: float = WAIT_S, logs: list[Path] = ()):
    """Poll `check` until it returns something truthy; fail naming `what` and showing the stand-ins' logs."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    tails = "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in logs if path.exists())
    pytest.fail(f"{what}: not so after {timeout_s:.0f} s (last seen: {last!r})\n{tails}")


class StandIn:
    """One stand-in process: its API port, its sandbox control port and its log."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], port: int, log: Path):
        self.port = port
        self.control_port = int(env["SAXCTL_SANDBOX_CONTROL_PORT"])
        self.address = f"127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as output:
            self.process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                                            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)

    def control(self, method: str, what: str, payload: object = None) -> dict:
        body = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}/_sandbox/{what}", data=body,
                                         method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read() or b"{}")

    def calls(self, path: str) -> int:
        return sum(entry["path"] == path for entry in self.control("GET", "requests")["requests"])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class SaxCell:
    def __init__(self, sandbox, bucket: str, logs_dir: Path, time_scale: float = FAST):
        self.bucket = bucket
        self.sax_root = f"gs://{bucket}/sax-root"
        self._storage = sandbox.storage_client("sax-tests").bucket(bucket)
        self._logs_dir = logs_dir
        self._env = {**os.environ, **sandbox.env, "PYTHONPATH": str(REPO), "SAXCTL_SANDBOX_POD_IP": "127.0.0.1",
                     "SAXCTL_SANDBOX_SAX_TIME_SCALE": str(time_scale), "SAXCTL_SANDBOX_LM": "tests.sax.fake_lm",
                     "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA": "true"}
        self.stand_ins: list[StandIn] = []
        self._channels: list[grpc.Channel] = []

    @property
    def logs(self) -> list[Path]:
        return [stand_in.log for stand_in in self.stand_ins]

    def wait_for(self, what: str, check: Callable[[], object], timeout_s: float = WAIT_S):
        return wait_for(what, check, timeout_s, self.logs)

    # --- starting stand-ins --------------------------------------------------------------------------------------

    def start_admin(self, port: int | None = None, time_scale: float | None = None) -> StandIn:
        clock = {} if time_scale is None else {"SAXCTL_SANDBOX_SAX_TIME_SCALE": str(time_scale)}
        return self._start("admin", [f"--sax_cell={CELL}", f"--port={port or free_port()}"],
                           {"GSBUCKET": self.bucket, **clock})

    def start_model_server(self, devices: int = 4, chip: str = "tpuv5e", topology: str = "2x2",
                           port: int | None = None, real_model: bool = False) -> StandIn:
        """A model server with the test double of the language model, or with the real one (`real_model`)."""
        return self._start("model_server", [f"--port={port or free_port()}", f"--sax_cell={CELL}",
                                            f"--platform_chip={chip}", f"--platform_topology={topology}",
                                            "--jax_platforms=tpu"],
                           {"SAX_ROOT": self.sax_root,
                            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
                            **({"SAXCTL_SANDBOX_LM": ""} if real_model else {})})

    def start_http_server(self) -> StandIn:
        port = free_port()  # its /_sandbox/ endpoints are on its own port
        return self._start("http_server", [f"--port={port}"],
                           {"SAX_ROOT": self.sax_root, "SAXCTL_SANDBOX_CONTROL_PORT": str(port)})

    def _start(self, module: str, args: list[str], env: dict[str, str]) -> StandIn:
        port = int(next(arg for arg in args if arg.startswith("--port=")).split("=")[1])
        stand_in = StandIn(f"reconciler.sandbox.sax.{module}", args,
                           {**self._env, "SAXCTL_SANDBOX_CONTROL_PORT": str(free_port()), **env}, port,
                           self._logs_dir / f"{module}-{port}.log")
        self.stand_ins.append(stand_in)
        self.wait_for(f"{module} on port {port} healthy", lambda: self._healthy(stand_in))
        return stand_in

    @staticmethod
    def _healthy(stand_in: StandIn) -> bool:
        if stand_in.process.poll() is not None:
            pytest.fail(f"{stand_in.log.name} exited with {stand_in.process.returncode}:\n{stand_in.log.read_text()}")
        try:
            return bool(stand_in.control("GET", "health").get("ok"))
        except OSError:
            return False

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        for stand_in in self.stand_ins:
            stand_in.stop()

    # --- what a client sees ------------------------------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        blob = self._storage.blob(path)
        return blob.download_as_bytes() if blob.exists() else None

    def write(self, path: str, data: bytes) -> None:
        self._storage.blob(path).upload_from_string(data)

    def admin(self) -> admin_pb2_grpc.AdminStub:
        """The admin as a client finds it: the address in location.proto."""
        location = admin_pb2.Location.FromString(self.read("sax-root/sax/test/location.proto")).location
        return admin_pb2_grpc.AdminStub(self._channel(location))

    def modelet(self, server: StandIn) -> modelet_pb2_grpc.ModeletStub:
        return modelet_pb2_grpc.ModeletStub(self._channel(server.address))

    def _channel(self, address: str) -> grpc.Channel:
        channel = grpc.insecure_channel(address)
        self._channels.append(channel)
        return channel

    def servers_for(self, model_path: str) -> int:
        stats = self.admin().Stats(admin_pb2.StatsRequest(), timeout=10)
        return stats.num_servers_by_servable_model_path.get(model_path, 0)

    def addresses(self, model_id: str) -> list[str]:
        reply = self.admin().List(admin_pb2.ListRequest(model_id=model_id), timeout=10)
        return list(reply.published_models[0].modelet_addresses)

    def status(self, server: StandIn, model_id: str) -> tuple[int, str] | None:
        reply = self.modelet(server).GetStatus(modelet_pb2.GetStatusRequest(include_failure_reasons=True), timeout=10)
        found = [(model.model_status, model.failure_reason) for model in reply.models if model.model_key == model_id]
        return found[0] if found else None

    def publish(self, name: str, model_path: str, replicas: int = 1, checkpoint: str | None = None) -> str:
        model_id = f"{CELL}/{name}"
        self.admin().Publish(admin_pb2.PublishRequest(model=admin_pb2.Model(
            model_id=model_id, model_path=model_path, checkpoint_path=checkpoint or self.checkpoint(name),
            requested_num_replicas=replicas)), timeout=10)
        return model_id

    def checkpoint(self, name: str) -> str:
        return f"gs://{self.bucket}/checkpoints/{name}/checkpoint_00000000"

    def write_checkpoint(self, name: str, reply: str = "and so on") -> None:
        self.write(f"checkpoints/{name}/checkpoint_00000000/fake_lm.json", json.dumps({"reply": reply}).encode())
