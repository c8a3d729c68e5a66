"""What the drift corrector's end-to-end tests share: unique names, a client of the sandbox's GCS."""

import pytest

PROJECT = "saxctl-test"


@pytest.fixture
def names(unique_name):
    return {"spec": unique_name("s")[:40].rstrip("-"), "admin": unique_name("adm"), "data": unique_name("dat")}


@pytest.fixture
def gcs(sandbox):
    return sandbox.storage_client(PROJECT)
