"""The record of the Sax models saxctl published is one of its admin-bucket records: while a replace of the admin
bucket has left it only in the data bucket's stash, it is read there, so saxctl's models stay its own (real GCS
through the sandbox)."""

from __future__ import annotations

import pytest

from reconciler.providers.gcs.records import STASH_PREFIX, AdminRecords
from reconciler.providers.sax.record import RECORD_OBJECT, ModelRecord, body

PROJECT = "sax-records"
SPEC = "gptj-demo"


@pytest.fixture
def buckets(sandbox, unique_name):
    client = sandbox.storage_client(PROJECT)
    admin, data = unique_name("adm"), unique_name("dat")
    client.create_bucket(data)
    stashed = body(SPEC, frozenset({"/sax/test/gptj"}))
    client.bucket(data).blob(STASH_PREFIX + RECORD_OBJECT.removeprefix("saxctl/")).upload_from_string(stashed)
    return client, admin, data


def test_with_the_admin_bucket_gone_the_models_are_read_from_the_stash(buckets):
    client, admin, data = buckets
    records = AdminRecords(client, admin, data)
    records.seen(admin_exists=False, admin_marked=False, data_exists=True)

    assert ModelRecord(records, SPEC).models() == {"/sax/test/gptj"}


def test_in_a_new_admin_bucket_without_it_the_stash_is_read_and_a_change_is_written_to_the_bucket(buckets):
    client, admin, data = buckets
    client.create_bucket(admin)
    records = AdminRecords(client, admin, data)
    records.seen(admin_exists=True, admin_marked=True, data_exists=True)
    record = ModelRecord(records, SPEC)

    record.add("/sax/test/other")

    written = client.bucket(admin).blob(RECORD_OBJECT).download_as_bytes()
    assert written.decode() == body(SPEC, frozenset({"/sax/test/gptj", "/sax/test/other"}))


def test_the_admin_buckets_own_copy_wins_over_the_stash(buckets):
    client, admin, data = buckets
    client.create_bucket(admin)
    client.bucket(admin).blob(RECORD_OBJECT).upload_from_string(body(SPEC, frozenset({"/sax/test/newer"})))
    records = AdminRecords(client, admin, data)
    records.seen(admin_exists=True, admin_marked=True, data_exists=True)

    assert ModelRecord(records, SPEC).models() == {"/sax/test/newer"}
