"""What the GCS end-to-end tests share: unique names, a two-bucket spec over them, a client of the sandbox."""

import pytest
from cli_runner import buckets_spec

PROJECT = "saxctl-test"


@pytest.fixture
def names(unique_name):
    return {"spec": unique_name("s")[:40].rstrip("-"), "admin": unique_name("adm"), "data": unique_name("dat")}


@pytest.fixture
def spec(tmp_path, names):
    return buckets_spec(tmp_path, names["spec"], names["admin"], names["data"])


@pytest.fixture
def gcs(sandbox):
    return sandbox.storage_client(PROJECT)
