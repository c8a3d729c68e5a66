"""The IAM tests' fixture: a World of their own in the session's sandbox (tests/iam/iam_world.py)."""

from __future__ import annotations

import pytest
from iam_world import World


@pytest.fixture
def world(sandbox, tmp_path, unique_name, unique_project) -> World:
    created = World(sandbox, unique_project(), unique_name("s")[:40].rstrip("-"), unique_name("adm"),
                    unique_name("dat"), tmp_path / "spec.yaml")
    created.write_spec()
    return created
