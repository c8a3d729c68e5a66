"""Conflicts through the real CLI against the sandbox's real kube-apiserver: saxctl never takes a field another tool
applied unless told to (--force-conflicts, on the command line or recorded in a saved plan), even when that field
was applied after the plan; what an update changed (kubectl scale) and the plan showed, it sets back.
"""

from __future__ import annotations

import os
import pty
import subprocess

from cli_runner import REPO, SAXCTL, saxctl
from sax_world import HTTP_IMAGE
from sax_world import world  # noqa: F401 (a fixture)

IMAGE_FIELD = "spec.template.spec.containers[name=sax-http].image"
THEIRS = "gitops/http:2"


def gitops_applies_the_image(world, directory) -> None:
    """Another declarative tool takes the image over by server-side apply (as Argo CD or Flux would)."""
    manifest = directory / "theirs.json"
    manifest.write_text('{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sax-http"}, "spec": '
                        '{"template": {"spec": {"containers": [{"name": "sax-http", "image": "' + THEIRS + '"}]}}}}')
    world.kubectl("apply", "--server-side", "--field-manager=gitops", "--force-conflicts", "-f", str(manifest))


def http_server(apps, world):
    live = apps.read_namespaced_deployment("sax-http", world.namespace)
    return live.spec.replicas, live.spec.template.spec.containers[0].image


def test_a_field_applied_after_a_saved_plan_is_refused_naming_who_holds_it_and_taken_only_when_forced(
        world, apps, tmp_path):
    world.apply()
    world.kubectl("scale", "deployment/sax-http", "--replicas=2")
    saved = tmp_path / "plan.json"
    planned = world.saxctl("plan", "-out", str(saved))
    assert planned.code == 0 and "spec.replicas: 2 → 1" in planned.out, planned.text
    gitops_applies_the_image(world, tmp_path)

    stale = saxctl("apply", str(saved), env=world.sandbox.env)
    assert stale.code == 1, stale.text
    assert f"{IMAGE_FIELD} applied by field manager gitops" in stale.err, stale.text
    assert "Traceback" not in stale.text
    assert http_server(apps, world) == (2, THEIRS), "nothing was applied, nothing forced"

    refused = world.saxctl("apply", "--auto-approve")
    assert refused.code == 1, refused.text
    assert f"{IMAGE_FIELD} applied by field manager gitops" in refused.text
    assert http_server(apps, world) == (2, THEIRS)

    world.apply("--force-conflicts")
    assert http_server(apps, world) == (1, HTTP_IMAGE)
    assert world.saxctl("plan", "--detailed-exitcode").code == 0, "saxctl holds the image again"


def test_a_saved_plan_made_with_force_conflicts_is_applied_as_it_was_agreed(world, apps, tmp_path):
    world.apply()
    gitops_applies_the_image(world, tmp_path)
    saved = tmp_path / "plan.json"
    planned = world.saxctl("plan", "--force-conflicts", "-out", str(saved))
    assert planned.code == 0 and "taken over (--force-conflicts)" in planned.out, planned.text

    applied = saxctl("apply", str(saved), env=world.sandbox.env)
    assert applied.code == 0, applied.text
    assert http_server(apps, world) == (1, HTTP_IMAGE)
    assert world.saxctl("plan", "--detailed-exitcode").code == 0


def test_a_field_applied_while_the_user_reads_the_plan_stops_the_apply_with_nothing_forced(world, apps, tmp_path):
    """The plan shows replicas as drift; before the user says yes, gitops applies the image: the apply that follows
    meets a conflict its plan never showed, and stops naming it (it sets back nothing it was not shown either)."""
    world.apply()
    world.kubectl("scale", "deployment/sax-http", "--replicas=2")
    terminal, user = pty.openpty()  # saxctl asks only on a terminal
    process = subprocess.Popen([*SAXCTL, "-v", "apply", str(world.path)], cwd=REPO, stdin=user, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1", **world.sandbox.env})
    os.close(user)
    try:
        shown = b""
        while b"Only 'yes' will be accepted" not in shown:
            chunk = process.stdout.read1(4096)
            assert chunk, f"saxctl ended before asking: {shown.decode()}"
            shown += chunk
        assert b"spec.replicas: 2 \xe2\x86\x92 1" in shown, shown.decode()
        gitops_applies_the_image(world, tmp_path)
        os.write(terminal, b"yes\n")
        rest, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(terminal)
    said = (shown + rest).decode()
    assert process.returncode == 1, said
    assert f"{IMAGE_FIELD} (field manager gitops, by server-side apply) changed since the plan" in said, said
    assert "saxctl forced nothing" in said and "Traceback" not in said
    forced = [line for line in said.splitlines() if "force=true" in line and "dryRun" not in line]
    assert forced == [], "no apply was sent with force (the plan's dry-runs aside)"
    assert http_server(apps, world) == (2, THEIRS)

