"""A spec of the test's own with a checkpoint converted from the sample GPT-J and models published from it, and
what the Sax tests ask of the cell: a model's id, its HTTP server at the pod's IP, the model server's process."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.error
import urllib.request

from cli_runner import saxctl
from sax_world import SaxWorld

from reconciler.sandbox.sample_checkpoint import write_sample_gptj

GPTJ = "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32"
MODEL = "gptj"


def open_when_listening(request: urllib.request.Request, timeout_s: float = 60) -> bytes:
    """The reply's body, once a stand-in listens: a pod is Ready when its container has started (Sax's manifests have
    no readiness probe), which may be before the process in it listens; refused connections are tried again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read()
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


class ModelWorld(SaxWorld):
    """SaxWorld with a checkpoint converted from the sample GPT-J and models published from it."""

    def write_models(self, models: list[dict], *, machine: str = "ct5lp-hightpu-4t", topology: str = "2x2",
                     second_checkpoint: bool = False) -> None:
        self.write(machine=machine, topology=topology)
        source = self.directory / "gptj-source"
        if not source.exists():
            write_sample_gptj(source)
        text = textwrap.dedent(f"""\
            checkpoints:
              sample:
                source: {{format: hf-gptj, path: {source}}}
                destination: gs://dat-{self.spec_name}/sample/checkpoint_00000000
            """)
        if second_checkpoint:
            text += (f"  sample-again:\n    source: {{format: hf-gptj, path: {source}}}\n"
                     f"    destination: gs://dat-{self.spec_name}/again/checkpoint_00000000\n")
        text += ("models:\n" if models else "") + "".join(
            f"  - {{name: {m['name']}, modelPath: {m.get('path', GPTJ)}, checkpoint: {m.get('checkpoint', 'sample')}, "
            f"replicas: {m.get('replicas', 1)}}}\n" for m in models)
        with self.path.open("a") as spec:
            spec.write(text)

    def generate(self, prompt: str, *flags: str):
        return saxctl("generate", *flags, str(self.path), MODEL, prompt, env=self.sandbox.env, timeout=300)

    def model_id(self, name: str = MODEL) -> str:
        return f"/sax/test/{name}"

    def http_pod_ip(self) -> str:
        """The oldest running pod's: a pod just made by a scale-up may have its IP before its server listens."""
        pods = json.loads(self.kubectl("get", "pods", "-l", "app=sax-http", "-o", "json").stdout)["items"]
        running = [pod for pod in pods if pod["status"].get("podIP") and not pod["metadata"].get("deletionTimestamp")]
        return min(running, key=lambda pod: pod["metadata"]["creationTimestamp"])["status"]["podIP"]

    def http(self, method: str, path: str, body: dict) -> dict:
        """The Sax HTTP server at its pod's IP, as a user in the VPC reaches it (not through saxctl)."""
        request = urllib.request.Request(f"http://{self.http_pod_ip()}:8888{path}", method=method,
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        return json.loads(open_when_listening(request))

    def model_server_pods(self) -> list[dict]:
        """The model server's pods that run (have their IP, are not going), as the apiserver lists them."""
        pods = json.loads(self.kubectl("get", "pods", "-l", "app=sax-model-server", "-o", "json").stdout)["items"]
        return [pod for pod in pods if pod["status"].get("podIP") and not pod["metadata"].get("deletionTimestamp")]

    def process_of(self, pod: dict) -> dict | None:
        """The pod runner's process for the pod's container (pid, restarts), as it reports it; None before it runs."""
        rows = [row for row in self.sandbox.control("GET", "pod-runner", "containers")["containers"]
                if row["pod_uid"] == pod["metadata"]["uid"]]
        return rows[0] if rows else None
