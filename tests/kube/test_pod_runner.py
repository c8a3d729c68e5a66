"""The pod runner against the real apiserver: a pod of a known image on a kwok node runs as a process with the pod's
args and env, reachable at the pod's IP and through `kubectl port-forward`, logged for `kubectl logs`, restarted when
it dies, replaced with its pod. The image is the tests' own (tests/kube/echo_server.py, added by the sandbox fixture).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from kube_testkit import cpu_node, tpu_node, wait_for

from reconciler.sandbox import paths
from reconciler.sandbox.kube.nodes import CLUSTER_LABEL

IMAGE = "registry.example.com/tests/sandbox-test-echo:v1"
PORT = 8080
KUBECTL_TIMEOUT_S = 60


def echo_deployment(name: str, cluster: str, *, tpu_chips: int = 0, command: list[str] | None = None) -> dict:
    container = {"name": "echo", "image": IMAGE, "args": [f"--port={PORT}", f"--greeting=hello-from-{name}"],
                 "env": [{"name": "GREETING", "value": "plain value"},
                         {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "ports": [{"containerPort": PORT, "protocol": "TCP"}]}
    if command:
        container["command"] = command
    if tpu_chips:
        container["resources"] = {"requests": {"google.com/tpu": str(tpu_chips)},
                                  "limits": {"google.com/tpu": str(tpu_chips)}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": {CLUSTER_LABEL: cluster},
                                           "terminationGracePeriodSeconds": 5, "containers": [container]}}}}


def echo(address: str, port: int = PORT) -> dict | None:
    """What the echo server at address:port answers, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


def running_pod(core, namespace: str, app: str, other_than: str | None = None):
    """The app's one pod that runs (has its IP, is not going), if there is one yet."""
    pods = [pod for pod in core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
            if pod.status.pod_ip and pod.metadata.deletion_timestamp is None and pod.metadata.name != other_than]
    return pods[0] if len(pods) == 1 else None


def serving(core, namespace: str, app: str, other_than: str | None = None) -> tuple[object, dict]:
    """Wait until the app's pod answers at its own IP: (the pod, what it answered)."""
    def answered():
        pod = running_pod(core, namespace, app, other_than)
        reply = echo(pod.status.pod_ip) if pod is not None else None
        return (pod, reply) if reply is not None else None

    return wait_for(f"the process of {app}'s pod answers at the pod's IP", answered)


def kubectl(sandbox, *args: str, timeout: float = KUBECTL_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([str(paths.bin_dir() / "kubectl"), "--kubeconfig", sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"],
                           *args], capture_output=True, text=True, timeout=timeout)


def process_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def cluster(node_sink, unique_name) -> str:
    """A cluster of one CPU node, which this test's Deployments select."""
    name = unique_name("c")
    node_sink.sync(name, "cpu", [cpu_node(name, "cpu", 0)])
    return name


def test_a_pod_of_a_known_image_runs_as_a_process_with_its_args_env_and_its_own_loopback_ip(
        sandbox, core, apps, namespace, cluster):
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    pod, reply = serving(core, namespace, "echo")

    assert pod.status.pod_ip.startswith("127.") and pod.status.pod_ip != "127.0.0.1"
    assert reply["address"] == [pod.status.pod_ip, PORT], "it listens on the pod's IP"
    assert reply["argv"] == [f"--port={PORT}", "--greeting=hello-from-echo"]
    env = reply["env"]
    assert env["GREETING"] == "plain value" and env["MY_POD"] == pod.metadata.name == env["HOSTNAME"]
    assert env["SAXCTL_SANDBOX_POD_IP"] == pod.status.pod_ip
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1", "no google.com/tpu limit: one device"
    assert env["STORAGE_EMULATOR_HOST"] == sandbox.env["STORAGE_EMULATOR_HOST"]
    assert env["SAXCTL_IAM_ENDPOINT"] == sandbox.env["SAXCTL_IAM_ENDPOINT"]
    assert "SAXCTL_SANDBOX_KUBECONFIG" not in env, "no admin credentials in a pod"
    assert env["SAXCTL_SANDBOX_TOKEN"] != sandbox.env["SAXCTL_SANDBOX_TOKEN"]
    server = json.loads(Path(sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"]).read_text())["clusters"][0]["cluster"]["server"]
    assert f"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT']}" == server


def test_a_pods_google_token_and_its_api_access_volume_are_its_service_accounts_tokens_bound_to_the_pod(
        sandbox, core, apps, kube_api, namespace, cluster):
    from kubernetes import client

    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    pod, reply = serving(core, namespace, "echo")
    [access] = [volume.name for volume in pod.spec.volumes if volume.name.startswith("kube-api-access-")]
    volume = Path(sandbox.state_dir) / "data" / "pod-runner" / "pods" / pod.metadata.uid / "volumes" / access
    assert (volume / "namespace").read_text() == namespace
    assert (volume / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    for token in (reply["env"]["SAXCTL_SANDBOX_TOKEN"], (volume / "token").read_text()):
        review = client.AuthenticationV1Api(kube_api).create_token_review({"spec": {"token": token}}).status
        assert review.authenticated and review.user.username == f"system:serviceaccount:{namespace}:default"
        assert review.user.extra["authentication.kubernetes.io/pod-uid"] == [pod.metadata.uid]


def test_port_forward_through_the_apiserver_reaches_the_pods_process(sandbox, core, apps, namespace, cluster):
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    pod, reply = serving(core, namespace, "echo")

    forward = subprocess.Popen([str(paths.bin_dir() / "kubectl"), "--kubeconfig",
                                sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"], "-n", namespace, "port-forward",
                                f"pod/{pod.metadata.name}", f":{PORT}"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:LOCAL -> 8080"
        local = re.search(r"127\.0\.0\.1:(\d+) -> 8080", line)
        assert local, (line, forward.stderr.read() if forward.poll() is not None else "")
        # kwok may learn of the pod's PortForward a moment after the process listens: the first tries may fail.
        through = wait_for("a request through the port-forward is answered",
                           lambda: echo("127.0.0.1", int(local.group(1))))
    finally:
        forward.terminate()
        forward.wait(timeout=10)
    assert through["pid"] == reply["pid"]


def test_kubectl_logs_shows_the_process_output_and_the_previous_run_after_a_kill(
        sandbox, core, apps, namespace, cluster):
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    pod, first = serving(core, namespace, "echo")
    greeting = f"hello-from-echo listening on {pod.status.pod_ip}:{PORT} as pid {first['pid']}"

    logs = wait_for("kubectl logs shows the process's stdout and stderr",
                    lambda: (shown := kubectl(sandbox, "-n", namespace, "logs", pod.metadata.name)).returncode == 0
                    and greeting in shown.stdout and "a line on stderr" in shown.stdout and shown.stdout)
    assert "served /" in logs, "what it printed after starting is there too"

    os.kill(first["pid"], signal.SIGKILL)
    second = wait_for("the killed process is restarted",
                      lambda: (reply := echo(pod.status.pod_ip)) and reply["pid"] != first["pid"] and reply)
    wait_for("kubectl logs shows the new run, and --previous the killed one",
             lambda: f"as pid {second['pid']}" in kubectl(sandbox, "-n", namespace, "logs", pod.metadata.name).stdout
             and greeting in kubectl(sandbox, "-n", namespace, "logs", "--previous", pod.metadata.name).stdout)


def test_a_killed_process_is_restarted_in_the_same_pod_and_the_runner_counts_it(sandbox, core, apps, namespace,
                                                                                 cluster):
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    pod, first = serving(core, namespace, "echo")

    os.kill(first["pid"], signal.SIGKILL)
    second = wait_for("the killed process is restarted at the same pod IP",
                      lambda: (reply := echo(pod.status.pod_ip)) and reply["pid"] != first["pid"] and reply)
    assert second["env"]["MY_POD"] == pod.metadata.name, "the same pod, not a new one"
    [row] = [row for row in sandbox.control("GET", "pod-runner", "containers")["containers"]
             if row["pod_uid"] == pod.metadata.uid]
    assert (row["pid"], row["restarts"]) == (second["pid"], 1)


def test_a_process_that_keeps_exiting_is_restarted_with_backoff_and_its_pod_shows_crash_loop_back_off(
        sandbox, core, apps, namespace, cluster):
    manifest = echo_deployment("crashing", cluster)
    manifest["spec"]["template"]["spec"]["containers"][0]["args"].append("--exit-code=3")
    apps.create_namespaced_deployment(namespace, manifest)

    def backing_off_after(restarts: int):
        pod = running_pod(core, namespace, "crashing")
        [status] = (pod.status.container_statuses or [None]) if pod is not None else [None]
        waiting = status.state.waiting if status is not None and status.state is not None else None
        return pod if waiting and waiting.reason == "CrashLoopBackOff" and status.restart_count >= restarts else None

    pod = wait_for("the crashed container waits in CrashLoopBackOff", lambda: backing_off_after(0))
    [status] = pod.status.container_statuses
    assert not status.ready and status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error" and "back-off" in status.state.waiting.message
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    wait_for("it is restarted again and again", lambda: backing_off_after(2))
    assert "exiting with code 3" in kubectl(sandbox, "-n", namespace, "logs", pod.metadata.name).stdout


def test_deleting_the_pod_stops_its_process_and_the_deployments_new_pod_gets_a_new_one(
        sandbox, core, apps, namespace, cluster):
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    old_pod, old = serving(core, namespace, "echo")

    core.delete_namespaced_pod(old_pod.metadata.name, namespace)
    new_pod, new = serving(core, namespace, "echo", other_than=old_pod.metadata.name)
    assert new["env"]["MY_POD"] == new_pod.metadata.name != old_pod.metadata.name
    assert new["pid"] != old["pid"]
    wait_for("the old pod's process is stopped", lambda: not process_alive(old["pid"]))


def test_a_pods_process_stops_when_its_node_goes(sandbox, core, apps, namespace, node_sink, cluster):
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", cluster))
    pod, reply = serving(core, namespace, "echo")

    node_sink.sync(cluster, "cpu", [])  # the pool scaled to 0: its node is deleted, the pod is not (yet)
    wait_for("the process of the pod on the deleted node is stopped", lambda: not process_alive(reply["pid"]))
    assert core.read_namespaced_pod(pod.metadata.name, namespace).spec.node_name == pod.spec.node_name


def test_a_pod_asking_for_4_tpu_chips_sees_4_jax_devices_and_a_command_naming_the_images_executable_runs(
        sandbox, core, apps, namespace, node_sink, unique_name):
    name = unique_name("c")
    node_sink.sync(name, "tpu", [tpu_node(name, "tpu", 0)])
    apps.create_namespaced_deployment(namespace, echo_deployment("tpu-echo", name, tpu_chips=4,
                                                                 command=["/usr/bin/echo-server", "--greeting=cmd"]))
    pod, reply = serving(core, namespace, "tpu-echo")
    assert reply["env"]["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4"
    assert reply["argv"] == ["--greeting=cmd", f"--port={PORT}", "--greeting=hello-from-tpu-echo"], \
        "command replaces the entrypoint's name, args follow"


def test_a_container_of_an_image_the_runner_does_not_know_is_left_to_kwok_beside_one_it_runs(
        sandbox, core, apps, namespace, cluster):
    manifest = echo_deployment("mixed", cluster)
    manifest["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "registry.example.com/something-else:v1"})
    apps.create_namespaced_deployment(namespace, manifest)
    pod, _ = serving(core, namespace, "mixed")
    rows = [row for row in sandbox.control("GET", "pod-runner", "containers")["containers"]
            if row["pod_uid"] == pod.metadata.uid]
    assert [row["container"] for row in rows] == ["echo"]


def test_a_kwok_nodes_kubelet_port_left_from_an_earlier_sandbox_is_pointed_back_at_kwok_by_the_runner(
        sandbox, core, cluster):
    """kwok writes a node's kubelet port when it makes the node Ready, then only at its next heartbeat (20-45 s): a
    node still Ready across a restart of the sandbox (new ports) would send logs and port-forward to a dead port."""
    node = f"gke-{cluster}-cpu-0"
    kwok_port = sandbox.state["emulators"]["kwok"]["port"]

    def kubelet_port_and_writer():
        found = core.read_node(node)
        endpoints = found.status.daemon_endpoints
        writers = [entry.manager for entry in found.metadata.managed_fields
                   if "f:daemonEndpoints" in str(entry.fields_v1)]
        return endpoints.kubelet_endpoint.port if endpoints and endpoints.kubelet_endpoint else None, writers

    wait_for("the node's kubelet is kwok's server", lambda: kubelet_port_and_writer()[0] == kwok_port)
    # On a loaded machine kwok's own heartbeat may land first and set it back itself: then break it again (the
    # heartbeats are 20-45 s apart, so the runner, which watches the node, wins the next round).
    fixed_by = []
    for _ in range(3):
        core.patch_node_status(node, {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
        _, fixed_by = wait_for("the node's kubelet port set back to kwok's",
                                  lambda: (lambda found: found if found[0] == kwok_port else None)(
                                      kubelet_port_and_writer()))
        if fixed_by == ["saxctl-sandbox-pod-runner"]:
            break
    assert fixed_by == ["saxctl-sandbox-pod-runner"], f"only kwok's heartbeat set it back: {fixed_by}"


def echo_job(name: str, cluster: str, image: str, exit_code: int) -> dict:
    container = {"name": "echo", "image": image, "args": [f"--port={PORT}", f"--exit-code={exit_code}"]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "nodeSelector": {CLUSTER_LABEL: cluster}, "restartPolicy": "Never", "containers": [container]}}}}


def test_a_jobs_pod_ends_with_its_processs_exit_code_and_kwok_still_completes_the_jobs_it_does_not_run(
        core, kube_api, namespace, cluster):
    from kubernetes import client

    batch = client.BatchV1Api(kube_api)
    for name, image, code in (("fails", IMAGE, 3), ("succeeds", IMAGE, 0),
                              ("simulated", "registry.example.com/something-else:v1", 3)):
        batch.create_namespaced_job(namespace, echo_job(name, cluster, image, code))

    def outcome(job: str):
        conditions = batch.read_namespaced_job(job, namespace).status.conditions or []
        return next((c.type for c in conditions if c.type in ("Complete", "Failed") and c.status == "True"), None)

    assert wait_for("the failing process fails its Job", lambda: outcome("fails")) == "Failed"
    [pod] = core.list_namespaced_pod(namespace, label_selector="job-name=fails").items
    assert (pod.status.phase, pod.status.container_statuses[0].state.terminated.exit_code) == ("Failed", 3)
    assert wait_for("the process exiting 0 completes its Job", lambda: outcome("succeeds")) == "Complete"
    assert wait_for("kwok completes a Job of an image the runner does not run",
                    lambda: outcome("simulated")) == "Complete"


def test_standin_fault_rules_are_checked_before_any_is_kept(sandbox):
    import urllib.error

    bad = {"namespace": "ns", "container": "sax-admin-server", "rules": [{"grpc_code": "UNAVAILABLE"},
                                                                        {"grpc_code": "NOT_A_CODE"}]}
    with pytest.raises(urllib.error.HTTPError) as refused:
        sandbox.control("POST", "pod-runner", "standin-faults", bad)
    assert refused.value.code == 400
    assert "grpc_code must be one of" in refused.value.read().decode()
    assert sandbox.control("GET", "pod-runner", "standin-faults") == {"standin_faults": []}
