"""bench/critical_path.py and what bench/demo_apply.py reads of an apply cannot rot: the longest chain along the
dependencies, the sum, and each step's duration as the apply's own progress lines report it."""

from bench.critical_path import Step, paths
from bench.demo_apply import reported_durations
from reconciler.engine.address import Address
from reconciler.engine.resource import Action, Change
from reconciler.render.console import SaxConsole
from reconciler.render.progress import ConsoleReporter

# The demo spec's shape in small: buckets beside the cluster, the pool and the rollout after the cluster.
STEPS = [Step("gcs.bucket.data", "gcs.bucket", ()), Step("gke.cluster.c", "gke.cluster", ()),
         Step("gke.node_pool.tpu", "gke.node_pool", ("gke.cluster.c",)),
         Step("kubernetes.deployment.ns/sax", "kubernetes.deployment", ("gke.cluster.c", "gcs.bucket.data")),
         Step("sax.model.gptj", "sax.model", ("kubernetes.deployment.ns/sax", "gke.node_pool.tpu"))]


def test_the_critical_path_is_the_longest_chain_and_the_sequential_order_the_sum():
    cost = {"gcs.bucket.data": 1.0, "gke.cluster.c": 12.0, "gke.node_pool.tpu": 8.0,
            "kubernetes.deployment.ns/sax": 3.0, "sax.model.gptj": 2.0}
    found = paths(STEPS, cost)
    assert found.critical_seconds == 22.0
    assert found.chain == ("gke.cluster.c", "gke.node_pool.tpu", "sax.model.gptj")
    assert found.sequential_seconds == 26.0


def test_a_slow_step_beside_the_cluster_moves_the_critical_path_onto_its_own_chain():
    cost = {"gcs.bucket.data": 30.0, "gke.cluster.c": 12.0, "gke.node_pool.tpu": 8.0,
            "kubernetes.deployment.ns/sax": 3.0, "sax.model.gptj": 2.0}
    found = paths(STEPS, cost)
    assert found.critical_seconds == 35.0
    assert found.chain == ("gcs.bucket.data", "kubernetes.deployment.ns/sax", "sax.model.gptj")


def test_each_done_step_is_read_from_the_progress_lines_an_apply_prints(capsys, monkeypatch):
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):  # progress as a pipe gets it: plain lines
        monkeypatch.delenv(name, raising=False)
    reporter = ConsoleReporter(SaxConsole(stderr=True))
    try:
        for kind, name, action, seconds in (("iam.project_binding", "roles/storage.admin", Action.CREATE, 1.3),
                                            ("kubernetes.deployment", "ns/sax-model-server", Action.UPDATE, 41.0)):
            change = Change(Address(kind, name), kind, action, "why")
            reporter.started(change)
            reporter.message(change, "rolling out: 0/1 replicas ready")
            reporter.finished(change, seconds)
    finally:
        reporter.close()
    assert reported_durations(capsys.readouterr().err) == {"iam.project_binding.roles/storage.admin": 1.3,
                                                              "kubernetes.deployment.ns/sax-model-server": 41.0}
