"""The bucket provider's pure side: what the spec asks for, and how it compares with a bucket as GCS reports it."""

from types import SimpleNamespace

import pytest

from reconciler.engine.resource import Action
from reconciler.providers.gcs.bucket import BucketProvider, _observed, desired_resources
from reconciler.spec.model import Bucket, Buckets, Project, Spec


def spec(**admin_fields) -> Spec:
    return Spec(
        api_version="saxctl/v1", kind="SaxDeployment", name="gptj-demo",
        project=Project(id="saxctl-demo", region="us-central1"),
        buckets=Buckets(admin=Bucket(name="demo-admin", location="us", **admin_fields),
                        data=Bucket(name="demo-data", location="US")),
    )


def gcs_bucket(name="demo-admin", location="US", storage_class="STANDARD", uniform=True, versioning=False,
               labels=None, metageneration=1):
    """A bucket as google-cloud-storage hands it back (only what _observed reads)."""
    return SimpleNamespace(
        name=name, location=location, storage_class=storage_class, versioning_enabled=versioning,
        labels={"managed-by": "saxctl", "saxctl-spec": "gptj-demo"} if labels is None else labels,
        iam_configuration=SimpleNamespace(uniform_bucket_level_access_enabled=uniform), metageneration=metageneration,
        updated=None,
    )


def diff(desired_spec: Spec, live) -> "Change":
    admin = desired_resources(desired_spec)[0]
    return BucketProvider(client=None).diff(admin, None if live is None else _observed(admin.address, live))


def test_spec_becomes_two_buckets_with_ownership_labels_and_normalised_location():
    admin, data = desired_resources(spec(labels={"team": "ml"}))
    assert (admin.address, admin.name, data.address, data.name) == (
        "gcs.bucket.admin", "demo-admin", "gcs.bucket.data", "demo-data")
    assert admin.fields == {"location": "US", "uniformBucketLevelAccess": True,
                            "labels": {"team": "ml", "managed-by": "saxctl", "saxctl-spec": "gptj-demo"}}
    assert admin.params == {"project": "saxctl-demo", "role": "admin"}
    assert (admin.remote_id, data.remote_id) == ("gs://demo-admin", "gs://demo-data")
    assert data.depends_on == () and data.inside is None, "the lock's home is the runner's business, not an edge"


def test_missing_bucket_is_created():
    change = diff(spec(), None)
    assert (change.action, change.reason) == (Action.CREATE, "bucket gs://demo-admin does not exist")


def test_server_defaults_and_foreign_labels_are_no_permadiff():
    live = gcs_bucket(labels={"managed-by": "saxctl", "saxctl-spec": "gptj-demo", "added-by-someone": "x"},
                      storage_class="STANDARD", versioning=False)
    assert diff(spec(), live).action is Action.NOOP


def test_owned_fields_that_differ_are_an_update_with_each_field_named():
    live = gcs_bucket(uniform=False, labels={"managed-by": "saxctl", "saxctl-spec": "gptj-demo", "team": "old"})
    change = diff(spec(labels={"team": "ml"}, storage_class="NEARLINE"), live)
    assert change.action is Action.UPDATE
    assert [(f.path, f.before, f.after) for f in change.field_changes] == [
        ("labels.team", "old", "ml"), ("storageClass", "STANDARD", "NEARLINE"), ("uniformBucketLevelAccess", False, True)]
    assert change.reason == 'labels.team: "old" → "ml"; storageClass: "STANDARD" → "NEARLINE"; ' \
                            "uniformBucketLevelAccess: false → true"


def test_location_change_forces_replacement():
    change = diff(spec(), gcs_bucket(location="EU"))
    assert change.action is Action.REPLACE
    assert change.reason == 'location "EU" → "US" cannot change in place: the bucket will be deleted and created again'


@pytest.mark.parametrize("labels, owner", [
    ({"managed-by": "saxctl", "saxctl-spec": "gptj-demo"}, "gptj-demo"),
    ({"managed-by": "saxctl", "saxctl-spec": "other"}, "other"),
    ({"saxctl-spec": "gptj-demo"}, None),
    ({}, None),
], ids=["ours", "other-spec", "no-managed-by", "no-labels"])
def test_ownership_comes_from_the_labels(labels, owner):
    assert _observed("gcs.bucket.admin", gcs_bucket(labels=labels)).owner == owner


def test_an_admin_bucket_left_marked_by_a_stopped_replace_is_an_update_that_finishes_the_restore():
    """The mark (label saxctl-records=stashed) says records may wait in the stash: the plan cannot call it in sync."""
    from reconciler.providers.gcs.records import AdminRecords

    records = AdminRecords(client=None, admin_bucket="demo-admin", data_bucket="demo-data")
    records.seen(admin_exists=True, admin_marked=True, data_exists=False)  # no data bucket: nothing to list
    admin = desired_resources(spec())[0]
    marked = gcs_bucket(labels={"managed-by": "saxctl", "saxctl-spec": "gptj-demo", "saxctl-records": "stashed"})
    change = BucketProvider(client=None, records=records).diff(admin, _observed(admin.address, marked))
    assert change.action is Action.UPDATE and change.field_changes == ()
    assert change.reason == ("saxctl's records stashed in gs://demo-data/saxctl/admin-stash/ by a run that stopped "
                             "while replacing gs://demo-admin are restored into it: none left (the mark is removed)")
    unmarked = BucketProvider(client=None, records=records).diff(admin, _observed(admin.address, gcs_bucket()))
    assert unmarked.action is Action.NOOP
