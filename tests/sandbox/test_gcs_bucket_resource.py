"""The bucket resource rules of the front layer on their own (no server): defaults, patch, update, names."""

import pytest

from reconciler.sandbox.gcs import buckets as gcs_buckets
from reconciler.sandbox.base.api_errors import ApiError
from reconciler.sandbox.base.ids import project_number


def insert(**body):
    return gcs_buckets.new_bucket({"name": "saxctl-test", **body}, "demo-project")


def test_a_new_bucket_has_gcs_defaults():
    bucket = insert()
    assert bucket["location"] == "US" and bucket["locationType"] == "multi-region"
    assert bucket["storageClass"] == "STANDARD" and bucket["rpo"] == "DEFAULT"
    assert bucket["metageneration"] == "1" and bucket["etag"] == "CAE="
    assert bucket["iamConfiguration"] == {"bucketPolicyOnly": {"enabled": False},
                                          "uniformBucketLevelAccess": {"enabled": False},
                                          "publicAccessPrevention": "inherited"}
    assert bucket["softDeletePolicy"]["retentionDurationSeconds"] == "604800"
    assert "labels" not in bucket and "versioning" not in bucket
    assert bucket["projectNumber"] == project_number("demo-project") and len(bucket["projectNumber"]) == 12


@pytest.mark.parametrize("location, kind", [("us-central1", "region"), ("eu", "multi-region"), ("NAM4", "dual-region")])
def test_location_is_upper_cased_and_typed(location, kind):
    bucket = insert(location=location)
    assert bucket["location"] == location.upper() and bucket["locationType"] == kind
    assert ("rpo" in bucket) == (kind != "region")


def test_etag_is_the_canonical_base64_of_the_metageneration():
    assert [gcs_buckets.bucket_etag(n) for n in (1, 2, 127, 128)] == ["CAE=", "CAI=", "CH8=", "CIAB"]


def test_patch_merges_labels_null_removes_one_and_the_metageneration_moves():
    bucket = insert(labels={"keep": "1", "drop": "2"})
    patched = gcs_buckets.patch_bucket(bucket, {"labels": {"drop": None, "new": "3"}})
    assert patched["labels"] == {"keep": "1", "new": "3"}
    assert patched["metageneration"] == "2" and patched["etag"] == "CAI="
    assert bucket["labels"] == {"keep": "1", "drop": "2"}, "the stored resource is not changed in place"


def test_patch_keeps_what_it_does_not_name():
    bucket = insert(storageClass="NEARLINE", versioning={"enabled": True},
                    iamConfiguration={"uniformBucketLevelAccess": {"enabled": True}})
    patched = gcs_buckets.patch_bucket(bucket, {"labels": {"a": "b"}})
    assert patched["storageClass"] == "NEARLINE" and patched["versioning"] == {"enabled": True}
    assert patched["iamConfiguration"] == bucket["iamConfiguration"], "lockedTime stays the time it was turned on"


def test_update_replaces_every_writable_field():
    bucket = insert(labels={"a": "b"}, storageClass="COLDLINE", versioning={"enabled": True})
    replaced = gcs_buckets.update_bucket(bucket, {"name": "saxctl-test", "labels": {"c": "d"}})
    assert replaced["labels"] == {"c": "d"} and replaced["storageClass"] == "STANDARD"
    assert "versioning" not in replaced and replaced["timeCreated"] == bucket["timeCreated"]
    assert replaced["location"] == "US" and replaced["metageneration"] == "2"


def test_uniform_access_gets_a_locked_time_when_turned_on_and_loses_it_when_off():
    bucket = insert()
    on = gcs_buckets.patch_bucket(bucket, {"iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}}})
    assert on["iamConfiguration"]["uniformBucketLevelAccess"]["lockedTime"] > on["updated"]
    assert on["iamConfiguration"]["bucketPolicyOnly"] == on["iamConfiguration"]["uniformBucketLevelAccess"]
    off = gcs_buckets.patch_bucket(on, {"iamConfiguration": {"uniformBucketLevelAccess": {"enabled": False}}})
    assert off["iamConfiguration"]["uniformBucketLevelAccess"] == {"enabled": False}


@pytest.mark.parametrize("name", ["ab", "UPPER", "-dash-first", "dash-last-", "has space", "goog-prefix",
                                  "my-google-bucket", "g00gle-like", "192.168.1.1", "a" * 64, "a..b"])
def test_names_gcs_refuses(name):
    with pytest.raises(ApiError) as raised:
        gcs_buckets.check_bucket_name(name)
    assert raised.value.code == 400 and raised.value.reason == "invalid"
    assert raised.value.message == f"Invalid bucket name: '{name}'"


@pytest.mark.parametrize("name", ["abc", "a-b_c.d", "1bucket", "a" * 63, ".".join(["a" * 63] * 3)])
def test_names_gcs_accepts(name):
    assert gcs_buckets.check_bucket_name(name) == name


@pytest.mark.parametrize("body, message", [
    ({"location": "moon-base1x"}, "location constraint is not valid"),
    ({"storageClass": "CHEAP"}, "Invalid storage class"),
    ({"labels": {"Upper": "x"}}, "Invalid label key 'Upper'"),
    ({"labels": {"k": "UPPER"}}, "Invalid value for label 'k'"),
    ({"iamConfiguration": {"publicAccessPrevention": "sometimes"}}, "publicAccessPrevention"),
])
def test_bad_values_are_400_invalid(body, message):
    with pytest.raises(ApiError, match=message) as raised:
        insert(**body)
    assert raised.value.code == 400


@pytest.mark.parametrize("body, message", [
    ({"colour": "red"}, 'Unknown name "colour"'),
    ({"labels": ["a"]}, "Invalid value for field 'labels': expected a JSON object"),
    ({"defaultEventBasedHold": "yes"}, "expected a JSON boolean"),
])
def test_unknown_fields_and_wrong_types_are_refused(body, message):
    with pytest.raises(ApiError, match=message):
        gcs_buckets.check_body(body)


def test_read_only_fields_echoed_back_are_accepted_but_location_cannot_change():
    bucket = insert(location="EU")
    gcs_buckets.check_body({"etag": "x", "kind": "storage#bucket", "metageneration": "9"})
    gcs_buckets.check_immutable(bucket, {"location": "eu"})
    with pytest.raises(ApiError, match="location of an existing bucket cannot be changed"):
        gcs_buckets.check_immutable(bucket, {"location": "US"})


@pytest.mark.parametrize("params, code", [
    ({"ifMetagenerationMatch": "2"}, 412),
    ({"ifMetagenerationNotMatch": "1"}, 412),
    ({"ifMetagenerationMatch": "x"}, 400),
])
def test_preconditions_on_writes(params, code):
    with pytest.raises(ApiError) as raised:
        gcs_buckets.check_preconditions(insert(), params, read=False)
    assert raised.value.code == code


def test_preconditions_that_hold_pass_and_a_read_gets_304():
    bucket = insert()
    gcs_buckets.check_preconditions(bucket, {"ifMetagenerationMatch": "1", "ifMetagenerationNotMatch": "7"}, read=False)
    with pytest.raises(ApiError) as raised:
        gcs_buckets.check_preconditions(bucket, {"ifMetagenerationNotMatch": "1"}, read=True)
    assert raised.value.code == 304


def test_projections():
    bucket = insert()
    assert not {"acl", "defaultObjectAcl", "owner"} & set(gcs_buckets.render(bucket, "noAcl", "http://h"))
    full = gcs_buckets.render(bucket, "full", "http://h")
    number = bucket["projectNumber"]
    assert full["owner"] == {"entity": f"project-owners-{number}"}
    assert [entry["entity"] for entry in full["acl"]] == [f"project-{team}-{number}"
                                                          for team in ("owners", "editors", "viewers")]
    assert full["selfLink"] == "http://h/storage/v1/b/saxctl-test"
    uniform = insert(iamConfiguration={"uniformBucketLevelAccess": {"enabled": True}})
    assert "acl" not in gcs_buckets.render(uniform, "full", "http://h")
