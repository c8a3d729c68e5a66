"""Fixtures of the GKE end-to-end tests: a project of their own on the sandbox, operation latencies for one test."""

from __future__ import annotations

import pytest
from gke_support import GkeWorld


@pytest.fixture
def world(sandbox, unique_project) -> GkeWorld:
    return GkeWorld(sandbox, sandbox.gke_client(), unique_project())


@pytest.fixture
def operation_latency(sandbox):
    """set(CREATE_CLUSTER=15, ...): seconds per operation type for one test; the defaults come back after it."""
    before = sandbox.control("GET", "gke", "operation-latency")
    touched: set[str] = set()

    def set_latency(**seconds: float) -> None:
        touched.update(seconds)
        sandbox.control("POST", "gke", "operation-latency", seconds)

    yield set_latency
    # A type the test added goes back to the default too (the control endpoint only updates what it is given).
    sandbox.control("POST", "gke", "operation-latency",
                    {**{kind: before["default"] for kind in touched}, **before})


@pytest.fixture
def gcs_client(sandbox, world):
    return sandbox.storage_client(world.project)
