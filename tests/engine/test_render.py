"""Renderers against golden files. Refresh them only on purpose: SAXCTL_UPDATE_GOLDEN=1 pytest tests/engine."""

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from reconciler.engine.address import Address
from reconciler.engine.plan import Blocked, Conflict, Plan, SpecRef, Unmanaged
from reconciler.engine.provider import Problem
from reconciler.engine.planfile import plan_to_json, plan_validator, read_plan, write_plan, PlanFileError
from reconciler.engine.resource import UNKNOWN, Action, Change, FieldChange, Hazard, Observed, Ref, Resource

KINDS = {"gcs.bucket", "gke.cluster", "kubernetes.deployment"}
from reconciler.render.plan_markdown import plan_markdown
from reconciler.render.plan_text import plan_markup

GOLDEN = Path(__file__).parent / "golden"


def bucket(role, name, **fields):
    base = {"location": "US", "uniformBucketLevelAccess": True,
            "labels": {"managed-by": "saxctl", "saxctl-spec": "gptj-demo"}}
    return Resource(Address("gcs.bucket", role), "gcs.bucket", name, {**base, **fields},
                    replace_on=frozenset({"location"}), params={"project": "saxctl-demo", "role": role},
                    spec_field=f"buckets.{role}", remote_id=f"gs://{name}")


def seen(resource, fingerprint="metageneration 1", owner="gptj-demo", **fields):
    return Observed(resource.address, f"gs://{resource.name}", {**resource.fields, **fields}, fingerprint, owner,
                    facts={"metageneration": 1}, outputs={"url": f"gs://{resource.name}"})


def sample_plan() -> Plan:
    admin = bucket("admin", "demo-admin")
    data = bucket("data", "demo-data", labels={"managed-by": "saxctl", "saxctl-spec": "gptj-demo", "team": "b"})
    logs = bucket("logs", "demo-logs", location="EU")
    old = bucket("old", "demo-old")
    same = bucket("same", "demo-same")
    app = Resource(Address("kubernetes.deployment", "default/sax-http"), "kubernetes.deployment", "sax-http",
                   {"image": "sax-http:v1", "endpoint": Ref(Address("gke.cluster", "saxml"), "endpoint")},
                   inside=Address("gke.cluster", "saxml"), list_keys={"containers": "name"}, timeout_s=600.0)
    return Plan(
        mode="apply",
        spec=SpecRef("gptj-demo", "specs/gptj-v5e-2x2.yaml", "ab" * 32),
        changes=(
            Change(admin.address, admin.kind, Action.CREATE, "bucket gs://demo-admin does not exist", desired=admin),
            Change(data.address, data.kind, Action.UPDATE, 'labels.team: "a" → "b"',
                   (FieldChange("labels.team", "a", "b"),), data,
                   seen(data, labels={"managed-by": "saxctl", "saxctl-spec": "gptj-demo", "team": "a"})),
            Change(logs.address, logs.kind, Action.REPLACE, "location US → EU cannot change in place",
                   (FieldChange("location", "US", "EU", True),), logs, seen(logs, "metageneration 4", location="US"),
                   hazard=Hazard("gs://demo-logs holds 3 object(s) saxctl did not write (1.0 KiB: a, b, c): they "
                                 "will be deleted with it", True, "--allow-replace gcs.bucket.logs")),
            Change(old.address, old.kind, Action.DELETE, "no longer in the spec: gs://demo-old will be deleted",
                   desired=old, observed=seen(old), pruned=True,
                   hazard=Hazard("gs://demo-old holds 1 object(s) saxctl did not write (5 B: x)", True)),
            Change(app.address, app.kind, Action.CREATE, "gke.cluster.saxml does not exist yet: created after it",
                   desired=app, shown={"image": "sax-http:v1", "endpoint": UNKNOWN}),
            Change(same.address, same.kind, Action.NOOP, "up to date", desired=same, observed=seen(same)),
        ),
        conflicts=(Conflict(Address("gcs.bucket", "x"), "gs://x", "gs://x exists but saxctl did not create it"),),
        blocked=(Blocked(Address("gcs.bucket", "old"), "gs://demo-old holds 1 object(s) saxctl did not write (5 B: x)",
                         "rerun with --allow-delete gcs.bucket.old to delete it anyway"),),
        problems=(Problem(Address("gcs.bucket", "admin"), "buckets.admin.location",
                          "US: bucket quota 0 of 1 free; pick another location"),),
        unmanaged=(Unmanaged(Address("gke.cluster", "saxml"), "cluster",
                             "not managed yet: the gke provider is not built yet"),),
        fingerprints={"gcs.bucket.admin": "absent", "gcs.bucket.data": "metageneration 1",
                      "gcs.bucket.logs": "metageneration 4", "gcs.bucket.old": "metageneration 1",
                      "gcs.bucket.same": "metageneration 1", "kubernetes.deployment.default/sax-http": "not read"},
        created_at="2026-11-25T20:00:00+00:00",
    )


def as_plain_text(markup: str) -> str:
    out = io.StringIO()
    Console(file=out, no_color=True, width=200, highlight=False).print(markup)
    return out.getvalue()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SAXCTL_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file"


def test_json_plan_matches_golden_and_its_schema():
    document = plan_to_json(sample_plan())
    plan_validator().validate(document)
    check_golden("plan.json", json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def test_text_plan_matches_golden():
    check_golden("plan.txt", as_plain_text(plan_markup(sample_plan())))


def test_markdown_plan_matches_golden():
    check_golden("plan.md", plan_markdown(sample_plan()))


def test_saved_plan_round_trips(tmp_path):
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    assert read_plan(path, KINDS) == sample_plan()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content, message", [
    ("not json", "not a saxctl plan (invalid JSON: Expecting value)"),
    ('{"a": 1}', "not a saxctl plan file (no format_version)"),
    ('{"format_version": "9"}', "plan format '9' is not the one this saxctl reads ('2')"),
    ('{"format_version": "2", "mode": "apply"}', "not a valid saxctl plan: at (top): 'saxctl_version' is a required"),
], ids=["not-json", "no-version", "future-version", "incomplete"])
def test_bad_plan_files_are_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_plan(path, KINDS)
