"""The Sax provider's decisions, from what List, Stats and the ownership record say (pure: no admin needed)."""

import pytest

from cli_runner import REPO

from reconciler.engine.resource import Action
from reconciler.errors import RetryableError, SaxctlError
from reconciler.providers.sax import admin_errors, decide, record
from reconciler.providers.sax.resources import desired_resources
from reconciler.spec.loader import load_spec

GPTJ = "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32"
CHECKPOINT = "gs://saxctl-demo-sax-data/checkpoints/checkpoint_00000000"


@pytest.fixture(scope="module")
def model():
    spec = load_spec(str(REPO / "specs" / "gptj-v5e-2x2.yaml"), environ={"GPTJ_CHECKPOINT": "/nonexistent"})
    [resource] = desired_resources(spec)
    return resource


def published(**changes):
    fields = {"model_path": GPTJ, "checkpoint": CHECKPOINT, "replicas": 1, "overrides": {}, **changes}
    return decide.Published("/sax/test/gptj4bf16bs32", fields["model_path"], fields["checkpoint"],
                            fields["replicas"], fields["overrides"], ("10.0.0.7:10001",))


def live(owner="gptj-demo", **changes):
    return decide.observed("sax.model.gptj4bf16bs32", published(**changes), owner)


def test_the_spec_model_is_a_resource_with_its_dependencies_and_requirements(model):
    assert model.fields == {"model_path": GPTJ, "checkpoint": CHECKPOINT, "replicas": 1, "overrides": {}}
    assert model.params["model_id"] == "/sax/test/gptj4bf16bs32"
    assert {str(a) for a in model.depends_on} == {"gcs.bucket.admin", "kubernetes.deployment.default/sax-admin-server",
                                                  "kubernetes.deployment.default/sax-model-server",
                                                  "checkpoint.gptj-6b"}
    assert [(str(r.address), r.output, r.settles) for r in model.requires] == [
        ("kubernetes.deployment.default/sax-model-server", "available_replicas", True),
        ("checkpoint.gptj-6b", "markers", False)]


def test_absent_is_a_publish(model):
    change = decide.decide(model, None)
    assert change.action is Action.CREATE
    assert change.reason == "publish /sax/test/gptj4bf16bs32: GPTJ4BF16BS32, 1 replica"


def test_as_published_is_no_change(model):
    assert decide.decide(model, live()).action is Action.NOOP


def test_a_replicas_change_is_an_update(model):
    change = decide.decide(model, live(replicas=3))
    assert (change.action, change.reason) == (Action.UPDATE, "replicas 3 → 1 (Update)")


@pytest.mark.parametrize("field, value", [("checkpoint", "gs://other/checkpoint_00000001"),
                                          ("model_path", "saxml.server.pax.lm.params.gptj.GPTJ"),
                                          ("overrides", {"BATCH_SIZE": "4"})])
def test_what_update_cannot_change_is_a_replace_naming_the_field(model, field, value):
    change = decide.decide(model, live(**{field: value}))
    assert change.action is Action.REPLACE
    assert change.reason.startswith(f"{field} ")
    assert change.reason.endswith("/sax/test/gptj4bf16bs32 will be unpublished and published again")
    assert [c.path for c in change.field_changes if c.forces_replacement] == [field]


def test_a_model_not_in_the_record_has_no_owner():
    assert live(owner=None).owner is None


def test_not_enough_servers_says_the_numbers_and_the_cause():
    servers = decide.Servers({}, 1)
    pool = {"name": "tpu", "machine_type": "ct5lp-hightpu-1t", "chips_per_node": 1}
    assert decide.serving_problem(GPTJ, 1, servers, pool, 4) == (
        "0 model servers can serve GPTJ4BF16BS32: it needs 4 TPU chips per host; pool tpu is ct5lp-hightpu-1t "
        "(1 chip)")


def test_no_joined_server_is_said():
    text = decide.serving_problem(GPTJ, 1, decide.Servers({}, 0), None, None)
    assert text == "0 model servers can serve GPTJ4BF16BS32: no model server has joined the admin"


def test_enough_servers_is_no_problem():
    assert decide.serving_problem(GPTJ, 2, decide.Servers({GPTJ: 2}, 2), None, 4) is None
    assert decide.serving_problem(GPTJ, 2, decide.Servers({GPTJ: 1}, 1), None, None) == (
        "1 model server can serve GPTJ4BF16BS32 (2 needed): 1 model server joined")


@pytest.mark.parametrize("code, text, kind, message", [
    ("UNKNOWN", "model /sax/test/x already exists", admin_errors.AlreadyExists,
     "sax.Admin/Publish /sax/test/x: /sax/test/x is already published"),
    ("UNKNOWN", "/sax/test/x is being unpublished, please retry later", admin_errors.BeingUnpublished,
     "sax.Admin/Publish /sax/test/x: the admin still holds /sax/test/x from its unpublish (it refuses the name for "
     "about 10 s)"),
    ("UNKNOWN", "model /sax/test/x not found", admin_errors.NotFound,
     "sax.Admin/Publish /sax/test/x: the admin has no model /sax/test/x"),
    ("NOT_FOUND", "", admin_errors.NotFound, "sax.Admin/Publish /sax/test/x: the admin has no model /sax/test/x"),
])
def test_the_admins_unknown_texts_become_clear_errors(code, text, kind, message):
    error = admin_errors.admin_error("Publish", "/sax/test/x", code, text)
    assert type(error) is kind
    assert error.message == message


def test_being_unpublished_is_retried_after_ten_seconds():
    error = admin_errors.admin_error("Publish", "/sax/test/x", "UNKNOWN", "is being unpublished, please retry later")
    assert isinstance(error, RetryableError) and error.retry_after == 10.0


def test_the_record_lists_model_ids_and_refuses_what_it_cannot_read():
    text = record.body("gptj-demo", frozenset({"/sax/test/b", "/sax/test/a"}))
    assert record.parse(text.encode(), "gs://a/saxctl/sax-models.json") == {"/sax/test/a", "/sax/test/b"}
    with pytest.raises(SaxctlError, match="gs://a/saxctl/sax-models.json is not a record of Sax models saxctl can "
                                          "read: kind is 'saxctl/iam-members'"):
        record.parse(b'{"kind": "saxctl/iam-members", "members": []}', "gs://a/saxctl/sax-models.json")


def test_overrides_of_the_spec_are_the_models_and_compared_as_a_map(tmp_path):
    overrides = '    overrides: {BATCH_SIZE: "4", BATCH_WAIT_SECS: "1"}\n'
    text = (REPO / "specs" / "gptj-v5e-2x2.yaml").read_text() + overrides
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(text)
    [resource] = desired_resources(load_spec(str(spec_path), environ={"GPTJ_CHECKPOINT": "/nonexistent"}))
    assert resource.fields["overrides"] == {"BATCH_SIZE": "4", "BATCH_WAIT_SECS": "1"}
    same = live(overrides={"BATCH_WAIT_SECS": "1", "BATCH_SIZE": "4"})
    assert decide.decide(resource, same).action is Action.NOOP
