"""`saxctl sandbox up|env|status|down` end to end: real processes, each test in its own state dir."""

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

SAXCTL = str(Path(sys.executable).with_name("saxctl"))
TIMEOUT_S = 280  # covers a first-run build of fake-gcs-server (RECIPES §2: 1 min 45 s cold)
SANDBOX_VARIABLES = ("STORAGE_EMULATOR_HOST", "SAXCTL_SANDBOX_KUBECONFIG", "SAXCTL_SANDBOX_TOKEN", "SAXCTL_GKE_ENDPOINT",
                     "SAXCTL_RESOURCEMANAGER_ENDPOINT", "SAXCTL_COMPUTE_ENDPOINT", "SAXCTL_IAM_ENDPOINT",
                     "SAXCTL_SANDBOX_DIR", "SAXCTL_SANDBOX")
EMULATORS = {"fake-gcs-server", "gcs", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
             "gke", "resourcemanager", "compute", "iam", "pod-runner"}


def saxctl(state_dir: Path, *args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in SANDBOX_VARIABLES}
    env.update(SAXCTL_SANDBOX_DIR=str(state_dir), NO_COLOR="1", COLUMNS="200", **env_overrides)
    return subprocess.run([SAXCTL, "sandbox", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def exports(stdout: str) -> dict[str, str]:
    pairs = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        name, value = line.removeprefix("export ").split("=", 1)
        pairs[name] = shlex.split(value)[0]
    return pairs


@pytest.fixture
def state_dir(tmp_path):
    yield tmp_path / "state"
    saxctl(tmp_path / "state", "down")  # whatever a failed test left running


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_up_env_status_down_and_buckets_survive_a_restart(state_dir):
    started = saxctl(state_dir, "up")
    assert started.returncode == 0, started.stderr
    assert "sandbox up in" in started.stderr
    env = exports(started.stdout)
    assert set(env) == set(SANDBOX_VARIABLES)
    assert env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:") and env["SAXCTL_SANDBOX"] == "1"
    assert env["SAXCTL_SANDBOX_DIR"] == str(state_dir.resolve())

    again = saxctl(state_dir, "up")
    assert again.returncode == 0 and "already up" in again.stderr and again.stdout == started.stdout
    assert saxctl(state_dir, "env").stdout == started.stdout

    status = saxctl(state_dir, "status", "--json")
    assert status.returncode == 0
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert set(rows) == EMULATORS
    assert all(row["healthy"] for row in rows.values())
    for name, variable in (("gke", "SAXCTL_GKE_ENDPOINT"), ("resourcemanager", "SAXCTL_RESOURCEMANAGER_ENDPOINT"),
                           ("compute", "SAXCTL_COMPUTE_ENDPOINT")):
        assert env[variable] == f"http://127.0.0.1:{rows[name]['port']}"
    assert f"http://127.0.0.1:{rows['gcs']['port']}" == env["STORAGE_EMULATOR_HOST"]
    assert f"127.0.0.1:{rows['iam']['ports']['grpc']}" == env["SAXCTL_IAM_ENDPOINT"]
    assert rows["iam"]["ports"]["grpc"] != rows["iam"]["port"]
    table = saxctl(state_dir, "status").stdout
    assert f"{rows['iam']['port']} grpc {rows['iam']['ports']['grpc']}" in table, "status shows both IAM ports"

    reply = requests.post(f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": "p"},
                          json={"name": "survives-restart", "labels": {"a": "b"}, "storageClass": "ARCHIVE"},
                          timeout=10)
    assert reply.status_code == 200

    stopped = saxctl(state_dir, "down")
    assert stopped.returncode == 0 and "sandbox stopped" in stopped.stderr
    assert not any(alive(row["pid"]) for row in rows.values())
    assert not list((state_dir / "pids").iterdir())
    down_status = saxctl(state_dir, "status")
    assert down_status.returncode == 1 and "not started" in down_status.stdout
    not_up = saxctl(state_dir, "env")
    assert not_up.returncode == 1 and "the sandbox is not up" in not_up.stderr and "Traceback" not in not_up.stderr

    second_up = saxctl(state_dir, "up")
    assert second_up.returncode == 0, second_up.stderr
    restarted = exports(second_up.stdout)
    kept = requests.get(f"{restarted['STORAGE_EMULATOR_HOST']}/storage/v1/b/survives-restart", timeout=10).json()
    assert (kept["labels"], kept["storageClass"]) == ({"a": "b"}, "ARCHIVE")

    assert saxctl(state_dir, "down", "--purge").returncode == 0
    assert not (state_dir / "data").exists()
    purged = exports(saxctl(state_dir, "up").stdout)
    gone = requests.get(f"{purged['STORAGE_EMULATOR_HOST']}/storage/v1/b/survives-restart", timeout=10)
    assert gone.status_code == 404


def test_the_exports_work_with_eval(state_dir):
    script = f'eval "$({shlex.quote(SAXCTL)} sandbox up)" && echo "$STORAGE_EMULATOR_HOST $SAXCTL_SANDBOX"' \
             f' && eval "$({shlex.quote(SAXCTL)} sandbox env --unset)" && echo "[${{STORAGE_EMULATOR_HOST-unset}}]"'
    env = {key: value for key, value in os.environ.items() if key not in SANDBOX_VARIABLES}
    shell = subprocess.run(["bash", "-c", script], env={**env, "SAXCTL_SANDBOX_DIR": str(state_dir)},
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert shell.returncode == 0, shell.stderr
    first, second = shell.stdout.splitlines()
    assert first.startswith("http://127.0.0.1:") and first.endswith(" 1")
    assert second == "[unset]"


def test_a_dead_emulator_is_reported_the_layer_in_front_of_it_stops_and_up_restarts_them(state_dir):
    env = exports(saxctl(state_dir, "up").stdout)
    state = json.loads((state_dir / "state.json").read_text())
    os.kill(state["emulators"]["fake-gcs-server"]["pid"], 9)  # a process this test started
    status = saxctl(state_dir, "status")
    assert status.returncode == 1 and "process not running" in status.stdout
    front = state["emulators"]["gcs"]["pid"]
    deadline = time.monotonic() + 15
    while alive(front) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(front), "the front layer exits once fake-gcs-server is gone, so clients fail fast"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": "p"}, timeout=10)
    assert "stopped answering: exiting" in Path(state["emulators"]["gcs"]["log"]).read_text()
    restarted = saxctl(state_dir, "up")
    assert restarted.returncode == 0 and "partly up: restarting" in restarted.stderr
    assert saxctl(state_dir, "status").returncode == 0


def test_fault_rules_from_a_file_are_installed_at_start(state_dir, tmp_path):
    rules = tmp_path / "faults.json"
    rules.write_text(json.dumps({"gcs": [{"method": "GET", "path": "^/storage/v1/b$", "status": 503, "count": 1}]}))
    env = exports(saxctl(state_dir, "up", "--faults", str(rules)).stdout)
    listed = requests.get(f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": "p"}, timeout=10)
    assert listed.status_code == 503
    assert requests.get(f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": "p"}, timeout=10).ok
    again = saxctl(state_dir, "up", SAXCTL_SANDBOX_FAULTS=str(rules))
    assert "already up" in again.stderr
    listed = requests.get(f"{env['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": "p"}, timeout=10)
    assert listed.status_code == 503, "rules given to `up` when already up are added to the running emulator"


@pytest.mark.parametrize("content, message", [
    ('{"nope": []}', "fault rules for unknown emulator(s) ['nope']"),
    ('[1, 2]', "must be a JSON object of emulator name"),
    ('{"gcs": [{"path": "("}]}', "not a valid regular expression"),
    ("{oops", "cannot read fault rules"),
])
def test_bad_fault_files_are_refused_and_nothing_keeps_running(state_dir, tmp_path, content, message):
    rules = tmp_path / "faults.json"
    rules.write_text(content)
    refused = saxctl(state_dir, "up", "--faults", str(rules))
    assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stdout == ""
    assert saxctl(state_dir, "status").returncode == 1


def test_without_go_the_error_says_how_to_get_it(state_dir, tmp_path):
    no_go = saxctl(state_dir, "up", PATH="/usr/bin:/bin", SAXCTL_SANDBOX_BIN=str(tmp_path / "empty-bin"))
    assert no_go.returncode == 1 and "Traceback" not in no_go.stderr
    assert "Go is needed to build fake-gcs-server" in no_go.stderr and "SAXCTL_SANDBOX_BIN" in no_go.stderr
    assert not (state_dir / "state.json").exists()


def test_env_unset_lists_every_variable_even_when_down(state_dir):
    unset = saxctl(state_dir, "env", "--unset")
    assert unset.returncode == 0
    assert unset.stdout.splitlines() == [f"unset {name}" for name in SANDBOX_VARIABLES] + [
        f'[ "${{GPTJ_CHECKPOINT-}}" != {state_dir / "samples" / "gptj"} ] || unset GPTJ_CHECKPOINT']


def test_a_port_taken_between_picking_and_binding_is_retried(monkeypatch, tmp_path):
    """Free ports are only free until someone binds them: parallel test sessions race for them."""
    import socket

    from reconciler.sandbox import supervisor

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = supervisor._free_port
        picks = iter([taken])
        monkeypatch.setattr(supervisor, "_free_port", lambda: next(picks, None) or real_free_port())
        monkeypatch.setenv("SAXCTL_SANDBOX_DIR", str(tmp_path))
        messages = []
        try:
            state, _ = supervisor.up(messages.append)
            retried = "port was taken by another process meanwhile: retrying with new ports"
            assert messages[0] == f"fake-gcs-server's {retried}"
            # A real race may add one: the session's sandbox starts its own emulators on this machine meanwhile.
            assert all(message.endswith(f"'s {retried}") for message in messages), messages
            assert taken not in [row["port"] for row in state["emulators"].values()]
            assert all(row.healthy for row in supervisor.status())
        finally:
            supervisor.down(messages.append)


def test_the_control_plane_restarts_with_its_objects_and_ca_and_a_new_token(state_dir):
    def api(env: dict, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        server = json.loads(Path(env["SAXCTL_SANDBOX_KUBECONFIG"]).read_text())["clusters"][0]["cluster"]
        return requests.request(method, server["server"] + path, verify=server["certificate-authority"], timeout=10,
                                headers={"Authorization": f"Bearer {token or env['SAXCTL_SANDBOX_TOKEN']}"}, **kwargs)

    first = exports(saxctl(state_dir, "up").stdout)
    created = api(first, "POST", "/api/v1/namespaces/default/configmaps",
                  json={"metadata": {"name": "survives-restart"}, "data": {"a": "b"}})
    assert created.status_code == 201, created.text
    ca = (state_dir / "kube" / "ca.crt").read_bytes()
    pids = {row["name"]: row["pid"] for row in json.loads(saxctl(state_dir, "status", "--json").stdout)}

    assert saxctl(state_dir, "down").returncode == 0
    assert not any(alive(pid) for pid in pids.values())
    second = exports(saxctl(state_dir, "up").stdout)
    assert second["SAXCTL_SANDBOX_TOKEN"] != first["SAXCTL_SANDBOX_TOKEN"], "a new token at every up"
    assert (state_dir / "kube" / "ca.crt").read_bytes() == ca, "the CA stays: clients that hold it keep working"
    assert api(second, "GET", "/api/v1/namespaces/default/configmaps/survives-restart").json()["data"] == {"a": "b"}
    assert api(second, "GET", "/api/v1/namespaces", token=first["SAXCTL_SANDBOX_TOKEN"]).status_code == 401

