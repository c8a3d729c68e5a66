"""`saxctl cron render`: the sandbox's kube-apiserver accepts every object (server-side dry-run), and the example in
examples/cron/ is what the command prints."""

from __future__ import annotations

import json
import subprocess

from cli_runner import REPO, saxctl

from reconciler.sandbox.paths import bin_dir

IMAGE = "us-docker.pkg.dev/saxctl-demo/saxctl/saxctl:0.1.0"
DEMO = REPO / "specs" / "gptj-v5e-2x2.yaml"


def test_the_rendered_objects_pass_a_server_side_dry_run(sandbox, namespace, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(DEMO.read_text().replace("{namespace: default, name: sax-sa}", f"{{namespace: {namespace}, "
                                                                                      "name: sax-sa}"))
    rendered = saxctl("cron", "render", str(spec), "--image", IMAGE, "--schedule", "*/5 * * * *",
                      "--pushgateway", "http://pushgateway.monitoring:9091")
    assert rendered.code == 0, rendered.text
    manifests = tmp_path / "cron.yaml"
    manifests.write_text(rendered.out)
    checked = subprocess.run([str(bin_dir() / "kubectl"), "--kubeconfig", sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"], "apply",
                              "--server-side", "--dry-run=server", "-o", "json", "-f", str(manifests)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    accepted = {item["kind"]: item for item in json.loads(checked.stdout)["items"]}
    assert sorted(accepted) == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "CronJob", "Role", "RoleBinding",
                                "ServiceAccount"]
    cron = accepted["CronJob"]["spec"]
    assert (cron["schedule"], cron["concurrencyPolicy"], cron["timeZone"]) == ("*/5 * * * *", "Forbid", "Etc/UTC")
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 1 and job["activeDeadlineSeconds"] == 1800
    [container] = job["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["args"][:3] == ["drift", "/etc/saxctl/spec.yaml", "--correct"]
    assert container["args"][-2:] == ["--pushgateway", "http://pushgateway.monitoring:9091"]
    assert accepted["ConfigMap"]["data"]["spec.yaml"] == spec.read_text(), "the spec as it is, in the ConfigMap"
    assert accepted["ServiceAccount"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        "saxctl-drift@saxctl-demo.iam.gserviceaccount.com"
    assert all(item["metadata"].get("namespace") in (namespace, None) for item in accepted.values())


def test_the_example_is_what_cron_render_prints():
    rendered = saxctl("cron", "render", "specs/gptj-v5e-2x2.yaml", "--image", IMAGE)
    assert rendered.code == 0, rendered.text
    assert rendered.out == (REPO / "examples" / "cron" / "gptj-demo.yaml").read_text()
