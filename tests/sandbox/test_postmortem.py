"""What a failed sandbox test's report says of the sandbox (tests/sandbox_postmortem.py), read from the running one."""

from sandbox_postmortem import postmortem


def test_a_postmortem_shows_the_pod_watch_cache_each_python_emulators_threads_and_kwok_and_stops_nothing(sandbox):
    said = postmortem(sandbox)
    assert "could not read" not in said, said
    assert 'apiserver_watch_cache_resource_version{group="",resource="pods"}' in said, said
    for name, module in (("gke", "gke/server.py"), ("iam", "iam/server.py"), ("pod-runner", "kube/pod_runner.py")):
        threads = said.split(f"=== {name}: its threads and last log lines ===\n", 1)[1].split("\n=== ", 1)[0]
        assert "most recent call first" in threads and module in threads, threads  # every thread's stack
    assert "sigs.k8s.io/kwok" in said.split("=== kwok: its last log lines ===\n", 1)[1], said
    for name in ("gcs", "gke", "resourcemanager", "compute", "iam", "pod-runner"):
        assert sandbox.control("GET", name, "health") is not None, f"{name} still serves"
