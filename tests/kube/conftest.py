"""Fixtures for tests against the sandbox's real kube-apiserver: API clients, a namespace, the node sink, a spec
with Sax models of its own."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from model_world import MODEL, ModelWorld


@pytest.fixture
def kube_api(sandbox) -> Iterator[object]:
    with sandbox.kube_api_client() as api_client:
        yield api_client


@pytest.fixture
def core(kube_api):
    from kubernetes import client

    return client.CoreV1Api(kube_api)


@pytest.fixture
def apps(kube_api):
    from kubernetes import client

    return client.AppsV1Api(kube_api)


@pytest.fixture
def namespace(core, unique_name) -> Iterator[str]:
    name = unique_name("ns")
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@dataclass
class SyncedPools:
    """The node sink, remembering every pool a test synced so that teardown empties them all."""

    sink: object
    pools: set[tuple[str, str]] = field(default_factory=set)

    def sync(self, cluster: str, pool: str, nodes) -> None:
        self.pools.add((cluster, pool))
        self.sink.sync(cluster, pool, nodes)


@pytest.fixture
def node_sink(sandbox) -> Iterator[SyncedPools]:
    from reconciler.sandbox.kube.nodes import KubeNodeSink

    sink = KubeNodeSink(sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"])
    synced = SyncedPools(sink)
    yield synced
    for cluster, pool in synced.pools:
        sink.sync(cluster, pool, [])
    sink.close()


@pytest.fixture
def models_world(sandbox, tmp_path, unique_project, core) -> Iterator[ModelWorld]:
    """A spec of the test's own publishing one model (MODEL) from the sample GPT-J; destroyed at the end."""
    from reconciler.sandbox.kube.nodes import cluster_namespace_annotations

    suffix = secrets.token_hex(4)
    created = ModelWorld(sandbox, tmp_path, f"m-{suffix}", unique_project(), f"ns-{suffix}", suffix)
    core.create_namespace({"metadata": {"name": created.namespace,
                                        "annotations": cluster_namespace_annotations(created.cluster_name)}})
    created.write_models([{"name": MODEL}])
    yield created
    created.saxctl("destroy", "--auto-approve", "--force-delete-buckets", timeout=300)
    core.delete_namespace(created.namespace)
