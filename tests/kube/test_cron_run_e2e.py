"""The drift corrector's CronJob runs in the sandbox: `saxctl cron render` applied with kubectl, the
kube-controller-manager makes a Job and a pod from it, and the pod runner runs the pod of the saxctl image as saxctl
itself — the ConfigMap's spec mounted as a file, the pod's service account token as its credentials — which sets
fields changed by hand back (a Deployment's replicas, a Sax model's), posts the Event and writes the metrics (a
textfile in the pod's emptyDir, a push-add to a Pushgateway). A run is made by hand as an operator makes one
(`kubectl create job --from=cronjob/...`), and once by the schedule itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cli_runner import saxctl
from kube_testkit import wait_for
from sax_world import HTTP_IMAGE
from sax_world import world  # noqa: F401 (a fixture)
from model_world import GPTJ, MODEL

IMAGE = "us-docker.pkg.dev/saxctl-demo/saxctl/saxctl:0.1.0"  # any registry and tag: the runner knows it by name
NEVER_BY_ITSELF = "0 0 1 1 *"  # New Year's midnight: the runs of the first test are the ones it makes
JOB_S = 150.0  # a run: saxctl starts, plans the whole deployment, corrects, waits for the rollout


class _Pushgateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]] = []

    def do_POST(self):  # push-add
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.received.append(("POST", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def pushgateway() -> Iterator[type[_Pushgateway]]:
    server = HTTPServer(("127.0.0.1", 0), _Pushgateway)
    _Pushgateway.received = []
    _Pushgateway.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield _Pushgateway
    server.shutdown()


@pytest.fixture
def batch(kube_api):
    from kubernetes import client

    return client.BatchV1Api(kube_api)


@pytest.fixture
def corrector(pushgateway, tmp_path):
    """Installs the rendered corrector of a world's spec with a schedule: returns the CronJob's name."""
    installed = []

    def install(world, schedule: str) -> str:
        rendered = saxctl("cron", "render", str(world.path), "--image", IMAGE, "--schedule", schedule,
                          "--pushgateway", pushgateway.url)
        assert rendered.code == 0, rendered.text
        manifests = tmp_path / "cron.yaml"
        manifests.write_text(rendered.out)
        world.kubectl("apply", "--server-side", "-f", str(manifests))
        installed.append(world)
        return f"saxctl-drift-{world.spec_name}"

    yield install
    for world in installed:  # the namespace takes the rest; the cluster-scoped RBAC goes here
        world.kubectl("delete", "clusterrole,clusterrolebinding", f"saxctl-drift-{world.spec_name}",
                      "--ignore-not-found", namespaced=False)


def finished(batch, namespace: str, job: str) -> str | None:
    conditions = batch.read_namespaced_job(job, namespace).status.conditions or []
    return next((c.type for c in conditions if c.type in ("Complete", "Failed") and c.status == "True"), None)


def job_pod(core, namespace: str, job: str):
    [pod] = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return pod


def gauges(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def pushed_gauges(pushgateway) -> list[dict[str, float]]:
    return [gauges(body) for _, _, body in pushgateway.received]


def applyset_events(core, world) -> list:
    return core.list_namespaced_event(world.namespace,
                                      field_selector=f"involvedObject.name=saxctl-{world.spec_name}").items


def test_a_run_made_from_the_cronjob_sets_back_a_scaled_deployment_and_a_models_replicas_with_event_and_metrics(
        models_world, corrector, pushgateway, sandbox, apps, core, batch):
    world = models_world
    world.apply()
    cronjob = corrector(world, NEVER_BY_ITSELF)
    world.http("PUT", "/update", {"model": world.model_id(), "model_path": GPTJ, "replicas": 2,
                                  "checkpoint": f"gs://dat-{world.spec_name}/sample/checkpoint_00000000"})
    world.kubectl("scale", "deployment/sax-http", "--replicas=2")

    world.kubectl("create", "job", f"--from=cronjob/{cronjob}", "by-hand")
    outcome = wait_for("the Job finishes", lambda: finished(batch, world.namespace, "by-hand"), JOB_S)
    logs = world.kubectl("logs", "job/by-hand", check=False)
    assert outcome == "Complete", logs.stdout + logs.stderr + world.cluster_side()

    pod = job_pod(core, world.namespace, "by-hand")
    [status] = pod.status.container_statuses
    assert (pod.status.phase, status.state.terminated.exit_code) == ("Succeeded", 0)
    assert f"corrected kubernetes.deployment.{world.namespace}/sax-http spec.replicas" in logs.stdout, logs.stdout
    assert f"corrected sax.model.{MODEL} replicas" in logs.stdout, logs.stdout
    assert apps.read_namespaced_deployment("sax-http", world.namespace).spec.replicas == 1
    assert world.http("GET", "/listcell", {"model": world.model_id()})["max_replicas"] == 1
    [corrected] = [event for event in applyset_events(core, world) if event.reason == "DriftCorrected"]
    assert "spec.replicas" in corrected.message, corrected.message
    # The textfile, in the pod's emptyDir as a node-exporter sidecar would read it.
    volume = Path(sandbox.state_dir) / "data" / "pod-runner" / "pods" / pod.metadata.uid / "volumes" / "metrics"
    assert gauges((volume / "saxctl_drift.prom").read_text())["saxctl_drift_corrected_fields"] == 2
    [pushed] = pushed_gauges(pushgateway)
    assert pushed["saxctl_drift_corrected_fields"] == 2 and pushed["saxctl_drift_errors"] == 0, pushed
    assert pushed["saxctl_drift_last_success_timestamp_seconds"] > 0


@pytest.mark.timeout(200)
def test_the_schedule_itself_runs_the_corrector(world, corrector, pushgateway, apps, batch):
    world.apply()
    world.kubectl("set", "image", "deployment/sax-http", f"sax-http={HTTP_IMAGE}-edited")
    cronjob = corrector(world, "* * * * *")  # the next minute's run

    def scheduled_run_done():
        cron = batch.read_namespaced_cron_job(cronjob, world.namespace)
        return cron.status.last_successful_time

    wait_for("a scheduled run succeeds", scheduled_run_done, 170)  # the next minute, then the run
    http = apps.read_namespaced_deployment("sax-http", world.namespace)
    assert http.spec.template.spec.containers[0].image == HTTP_IMAGE
    assert pushed_gauges(pushgateway)[0]["saxctl_drift_corrected_fields"] == 1
