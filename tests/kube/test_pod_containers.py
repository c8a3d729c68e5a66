"""What the pod runner makes of a pod (pure): which containers run, their command line and env, restart backoff."""

import pytest
from kubernetes import client

from reconciler.sandbox.kube.containers import (BACKOFF_INITIAL_S, BACKOFF_MAX_S, BACKOFF_RESET_AFTER_S,
                                                restart_delay, should_restart)
from reconciler.sandbox.kube.control_plane import pod_cidr
from reconciler.sandbox.kube.images import IMAGES, Image, UnrunnableContainer, image_name, table
from reconciler.sandbox.kube.pod_containers import container_specs, map_path, pod_ports, runnable_pod
from reconciler.sandbox.kube.pod_volumes import PodFiles, config_map_files

ENDPOINTS = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"}
NODE_ENV = {"PATH": "/usr/bin", "HOME": "/root", "SAXCTL_SANDBOX_TOKEN": "secret", "LANG": "C.UTF-8"}


def model_server_pod(chips: str | None = "4", **container_fields) -> client.V1Pod:
    container = client.V1Container(
        name="sax-model-server", image="us-docker.pkg.dev/cloud-tpu-images/inference/sax-model-server:v1.1.0",
        args=["--port=10001", "--sax_cell=/sax/test"],
        env=[client.V1EnvVar(name="SAX_ROOT", value="gs://admin/sax-root"),
             client.V1EnvVar(name="TPU_WORKER_ID", value_from=client.V1EnvVarSource(
                 field_ref=client.V1ObjectFieldSelector(field_path="metadata.labels['apps.kubernetes.io/pod-index']"))),
             client.V1EnvVar(name="FROM_SECRET", value_from=client.V1EnvVarSource(
                 secret_key_ref=client.V1SecretKeySelector(name="s", key="k")))],
        ports=[client.V1ContainerPort(container_port=10001)],
        resources=client.V1ResourceRequirements(limits={"google.com/tpu": chips} if chips else None),
        **container_fields)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="sax-model-server-0", namespace="sax", uid="u1",
                                     labels={"apps.kubernetes.io/pod-index": "0"}),
        spec=client.V1PodSpec(node_name="gke-tpu-0", containers=[container], restart_policy="Always"),
        status=client.V1PodStatus(phase="Running", pod_ip="127.1.2.3"))


@pytest.mark.parametrize("reference", [
    "us-docker.pkg.dev/cloud-tpu-images/inference/sax-http:v1.0.0", "sax-http", "localhost:5000/sax-http",
    "gcr.io/x/sax-http@sha256:" + "0" * 64])
def test_an_image_is_known_by_its_last_path_element_without_tag_or_digest(reference):
    assert image_name(reference) == "sax-http"


def test_the_sax_images_run_their_stand_ins_with_the_containers_args():
    pod = model_server_pod()
    [spec], refused = container_specs(pod, IMAGES, NODE_ENV, ENDPOINTS)
    assert refused == []
    assert spec.argv[1:] == ("-m", "reconciler.sandbox.sax.model_server", "--port=10001", "--sax_cell=/sax/test")
    assert {name: IMAGES[name].entrypoint[-1] for name in IMAGES} == {
        "sax-admin-server": "reconciler.sandbox.sax.admin", "sax-model-server": "reconciler.sandbox.sax.model_server",
        "sax-http": "reconciler.sandbox.sax.http_server", "saxctl": "reconciler"}


def test_the_env_is_the_containers_plus_pod_ip_endpoints_and_the_device_count_of_its_tpu_limit():
    [spec], _ = container_specs(model_server_pod(chips="4"), IMAGES, NODE_ENV, ENDPOINTS)
    env = dict(spec.env)
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "HOSTNAME": "sax-model-server-0",
                   "STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443", "SAX_ROOT": "gs://admin/sax-root",
                   "TPU_WORKER_ID": "0", "SAXCTL_SANDBOX_POD_IP": "127.1.2.3",
                   "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    [no_tpu], _ = container_specs(model_server_pod(chips=None), IMAGES, NODE_ENV, ENDPOINTS)
    assert dict(no_tpu.env)["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"


def test_a_command_replaces_the_entrypoint_only_when_it_names_the_images_executable():
    saxctl = Image(("python", "-m", "reconciler.cli"), executable="saxctl")
    assert saxctl.argv(["/usr/local/bin/saxctl", "drift"], ["spec.yaml"]) == \
        ["python", "-m", "reconciler.cli", "drift", "spec.yaml"]
    assert saxctl.argv(None, ["status"]) == ["python", "-m", "reconciler.cli", "status"]
    with pytest.raises(UnrunnableContainer, match="'sh' not found"):
        saxctl.argv(["sh", "-c", "saxctl drift"], None)
    specs, [(container, reason)] = container_specs(model_server_pod(command=["/bin/sh"]), IMAGES, NODE_ENV, ENDPOINTS)
    assert specs == [] and container == "sax-model-server" and "'/bin/sh' not found" in reason


def test_a_pod_runs_only_when_bound_to_a_kwok_node_given_its_ip_and_neither_going_nor_finished():
    pod = model_server_pod()
    assert runnable_pod(pod, {"gke-tpu-0"})
    assert not runnable_pod(pod, {"another-node"})
    pod.status.pod_ip = None
    assert not runnable_pod(pod, {"gke-tpu-0"})
    pod = model_server_pod()
    pod.metadata.deletion_timestamp = "2026-12-07T00:00:00Z"
    assert not runnable_pod(pod, {"gke-tpu-0"})
    pod = model_server_pod()
    pod.status.phase = "Succeeded"
    assert not runnable_pod(pod, {"gke-tpu-0"})
    assert pod_ports(pod) == [10001]


def test_extra_image_rows_come_from_the_environment_on_top_of_the_product_table():
    rows = table({"SAXCTL_SANDBOX_RUNNER_IMAGES": '{"echo": {"entrypoint": ["python", "echo.py"]}}'})
    assert rows["echo"] == Image(("python", "echo.py")) and rows["sax-http"] == IMAGES["sax-http"]
    assert table({}) == IMAGES


def test_restarts_back_off_doubling_up_to_a_cap_and_start_afresh_after_a_long_run():
    delays = [0.0]
    for _ in range(10):
        delays.append(restart_delay(delays[-1], ran_s=0.5))
    assert delays[1:4] == [BACKOFF_INITIAL_S, 2 * BACKOFF_INITIAL_S, 4 * BACKOFF_INITIAL_S]
    assert delays[-1] == BACKOFF_MAX_S
    assert restart_delay(BACKOFF_MAX_S, ran_s=BACKOFF_RESET_AFTER_S) == BACKOFF_INITIAL_S
    assert should_restart("Always", 0) and should_restart("OnFailure", 1)
    assert not should_restart("OnFailure", 0) and not should_restart("Never", 137)


def test_each_sandbox_takes_pod_ips_from_a_loopback_range_of_its_own_kwok_port():
    assert pod_cidr(41235) == "127.161.19.1/24"  # 41235 = 161 * 256 + 19
    assert pod_cidr(1024) == "127.4.0.1/24"
    assert len({pod_cidr(port) for port in range(1024, 65536)}) == 65536 - 1024


def corrector_pod() -> client.V1Pod:
    """A pod of the CronJob `saxctl cron render` prints (its container as rendered, trimmed to what matters)."""
    container = client.V1Container(
        name="saxctl", image="us-docker.pkg.dev/p/saxctl/saxctl:0.1.0",
        args=["drift", "/etc/saxctl/spec.yaml", "--correct", "--metrics-file", "/var/run/saxctl/saxctl_drift.prom"],
        env=[client.V1EnvVar(name="HOME", value="/tmp")],
        volume_mounts=[client.V1VolumeMount(name="spec", mount_path="/etc/saxctl", read_only=True),
                       client.V1VolumeMount(name="metrics", mount_path="/var/run/saxctl/"),
                       client.V1VolumeMount(name="tmp", mount_path="/tmp")])
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="saxctl-drift-x-1", namespace="sax", uid="u2"),
        spec=client.V1PodSpec(node_name="gke-cpu-0", containers=[container], restart_policy="Never",
                              service_account_name="saxctl-drift-x"),
        status=client.V1PodStatus(phase="Running", pod_ip="127.1.2.4"))


def test_the_saxctl_image_runs_saxctl_with_its_mounts_mapped_to_the_volumes_directories_and_the_pods_token():
    files = PodFiles((("spec", "/pods/u2/volumes/spec"), ("metrics", "/pods/u2/volumes/metrics"),
                      ("tmp", "/pods/u2/volumes/tmp")), google_token="pod-token")
    [spec], refused = container_specs(corrector_pod(), IMAGES, NODE_ENV, ENDPOINTS, files)
    assert refused == [] and spec.restart_policy == "Never"
    assert spec.argv[1:] == ("-m", "reconciler", "drift", "/pods/u2/volumes/spec/spec.yaml", "--correct",
                             "--metrics-file", "/pods/u2/volumes/metrics/saxctl_drift.prom")
    env = dict(spec.env)
    assert (env["HOME"], env["SAXCTL_SANDBOX_TOKEN"]) == ("/pods/u2/volumes/tmp", "pod-token")
    [without], _ = container_specs(corrector_pod(), IMAGES, NODE_ENV, ENDPOINTS)
    assert "SAXCTL_SANDBOX_TOKEN" not in dict(without.env), "never the runner's own (the admin's)"


@pytest.mark.parametrize(("value", "mapped"), [
    ("/etc/saxctl", "/v/spec"), ("/etc/saxctl/spec.yaml", "/v/spec/spec.yaml"),
    ("--metrics-file=/etc/saxctl/m.prom", "--metrics-file=/v/spec/m.prom"),
    ("/etc/saxctl-other/x", "/etc/saxctl-other/x"), ("/etc/saxctl/inner/x", "/v/inner/x"),
    ("drift", "drift"), ("a=/etc/saxctl/x", "a=/etc/saxctl/x")])
def test_a_path_under_a_mount_is_mapped_by_the_longest_mount_path(value, mapped):
    mounts = [("/etc/saxctl/inner", "/v/inner"), ("/etc/saxctl", "/v/spec")]
    assert map_path(value, mounts) == mapped


def test_a_config_map_volume_holds_every_key_or_only_its_items():
    data = {"spec.yaml": "a: 1\n", "other": "x"}
    assert config_map_files(data, None) == data
    assert config_map_files(data, [client.V1KeyToPath(key="spec.yaml", path="in/s.yaml"),
                                   client.V1KeyToPath(key="missing", path="m")]) == {"in/s.yaml": "a: 1\n"}
