"""bench/kube_plan_size.py cannot rot: its objects, its linear-growth check, and its smallest size end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import kube_plan_size
from bench.kube_plan_apply import HTTP_IMAGE, SPEC
from bench.kube_sized_plan import sized_resources
from reconciler.providers.kubernetes import ownership
from reconciler.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[2]


def test_a_fixed_part_and_so_many_per_object_is_linear():
    check = kube_plan_size.linear_growth({10: 14, 25: 29, 200: 204})
    assert check["ok"]
    assert check["per_object"] == {"10": 1.4, "25": 1.16, "200": 1.02}
    assert check["per_added_object"] == {"10→25": 1.0, "25→200": 1.0}


def test_requests_that_grow_with_the_objects_for_each_object_fail_the_check():
    quadratic = {size: size + size * size // 50 for size in (10, 25, 50, 100, 200)}
    check = kube_plan_size.linear_growth(quadratic)
    assert not check["ok"]
    assert check["bound"] == 1.2 and check["per_object"]["200"] == 5.0


def test_each_size_is_the_spec_objects_and_copies_of_its_members_in_its_applyset(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(http_image=f"{HTTP_IMAGE}:v1.0.0"))
    spec = load_spec(str(path))
    own = sized_resources(spec, 0)
    assert len(own) == 6
    grown = sized_resources(spec, 200)
    assert len(grown) == 200 and grown[:6] == own
    assert len({resource.address for resource in grown}) == 200
    set_id = own[0].params["manifest"]["metadata"]["labels"][ownership.APPLYSET_ID]
    for resource in grown[6:]:
        manifest = resource.params["manifest"]
        assert manifest["metadata"]["labels"][ownership.PART_OF] == set_id
        assert resource.address.name == f"default/{manifest['metadata']['name']}"
        if manifest["kind"] == "Deployment":  # a copy selects its own pods, not the original's
            selected = manifest["spec"]["selector"]["matchLabels"]["app"]
            assert selected == manifest["spec"]["template"]["metadata"]["labels"]["app"] == manifest["metadata"]["name"]


@pytest.mark.sandbox
@pytest.mark.timeout(240)
def test_the_smallest_size_plans_a_no_op_in_one_read_per_object_and_the_applyset_lists(tmp_path):
    env = {**os.environ, "SAXCTL_SANDBOX_DIR": str(tmp_path / "unused")}  # the benchmark makes a sandbox of its own
    completed = subprocess.run([sys.executable, "-m", "bench.kube_plan_size", "--smoke"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=230)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.splitlines()[-1])
    assert list(result["sizes"]) == ["10"] and result["runs"] == 1 and result["spec_objects"] == 6
    for tool in kube_plan_size.TOOLS:
        measured = result["sizes"]["10"][tool]
        assert measured["seconds"]["median"] > 0 and measured["cpu_seconds"]["median"] > 0
    # saxctl: a GET of each object, a LIST of the spec's ApplySet records and one per kind its record lists (3)
    assert result["sizes"]["10"]["saxctl"]["requests"] == {"count": 14, "by_verb": {"GET": 14}}
    # kubectl's server-side diff: a GET and a dry-run PATCH of each object
    assert result["sizes"]["10"]["kubectl"]["requests"]["by_verb"] == {"GET": 10, "PATCH": 10}
    assert result["linear_requests"]["saxctl"] == {"per_object": {"10": 1.4}, "per_added_object": {}, "bound": 1.4,
                                                   "ok": True}
