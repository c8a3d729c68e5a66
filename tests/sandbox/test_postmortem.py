"""What a failed sandbox test's report says of the sandbox (tests/sandbox_postmortem.py), read from the running one."""

from sandbox_postmortem import postmortem


def test_a_postmortem_shows_the_pod_watch_cache_the_runner_threads_and_kwok_and_stops_nothing(sandbox):
    said = postmortem(sandbox)
    assert "could not read" not in said, said
    assert 'apiserver_watch_cache_resource_version{group="",resource="pods"}' in said, said
    runner = said.split("=== the pod runner's threads and last log lines ===\n", 1)[1].split("\n=== ", 1)[0]
    assert "most recent call first" in runner and "pod_runner.py" in runner, runner  # every thread's stack
    assert "sigs.k8s.io/kwok" in said.split("=== kwok's last log lines ===\n", 1)[1], said
    assert "containers" in sandbox.control("GET", "pod-runner", "containers"), "the runner still serves"
