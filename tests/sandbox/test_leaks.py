"""The secrets scan: a token or key outside the sandbox's secret files is found; the secret files themselves are not."""

import os
import tempfile
from pathlib import Path

import pytest

from reconciler.sandbox.leaks import scan

TOKEN = "Zx8f" * 10


@pytest.fixture
def tmp_path():
    """Outside the session's temporary tree, which the suite scans for leaks at its end: these plant them."""
    with tempfile.TemporaryDirectory(prefix="saxctl-leaks-") as scratch:
        yield Path(scratch)


def sandbox_state(root: Path) -> Path:
    """A state dir as the sandbox leaves it: its secret files 0600 under kube/, the state file beside."""
    kube = root / "sandbox" / "kube"
    (kube / "pki").mkdir(parents=True)
    for path, content in ((kube / "tokens.csv", f'{TOKEN},admin,admin,"system:masters"\n'),
                          (kube / "kubeconfig", f"users: [{{name: admin, user: {{token: {TOKEN}}}}}]\n"),
                          (kube / "pki" / "ca.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"),
                          (root / "sandbox" / "state.json", f'{{"env": {{"SAXCTL_SANDBOX_TOKEN": "{TOKEN}"}}}}')):
        path.write_text(content)
        os.chmod(path, 0o600)
    return root / "sandbox"


def test_the_sandbox_secret_files_alone_are_no_leak(tmp_path):
    sandbox_state(tmp_path)
    (tmp_path / "sandbox" / "logs").mkdir()
    (tmp_path / "sandbox" / "logs" / "kube-apiserver.log").write_text("I1207 serving on 127.0.0.1:6443\n")
    assert scan([tmp_path]) == []


def test_the_token_in_a_log_or_a_plan_file_is_found(tmp_path):
    sandbox_state(tmp_path)
    log = tmp_path / "sandbox" / "runner.log"
    log.write_text(f"started pod with env SAXCTL_SANDBOX_TOKEN={TOKEN}\n")
    plan = tmp_path / "plan.json"
    plan.write_text(f'{{"params": {{"token": "{TOKEN}"}}}}')
    os.chmod(plan, 0o600)  # plan files are 0600 too: that does not make them a secret file
    found = {(leak.path.name, leak.what.split(" of ")[0]) for leak in scan([tmp_path])}
    assert found == {("runner.log", "the sandbox token"), ("plan.json", "the sandbox token")}


def test_a_private_key_a_service_account_key_or_a_bearer_header_anywhere_else_is_found(tmp_path):
    (tmp_path / "out.txt").write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    (tmp_path / "key.json").write_text('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}')
    (tmp_path / "requests.log").write_text("GET /api/v1/pods\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz\n")
    found = {(leak.path.name, leak.what) for leak in scan([tmp_path])}
    assert ("out.txt", "a PEM private key") in found
    assert ("key.json", "a service-account key") in found
    assert ("requests.log", "a bearer token in a header") in found


def test_a_session_that_leaves_a_token_on_disk_fails_naming_the_file(pytester, monkeypatch):
    """The suite's own check, in a session of its own: a test passes, yet the token it logged fails the run."""
    tests = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])))
    pytester.makeconftest('pytest_plugins = ["leak_check"]')
    pytester.makepyfile(test_logs_a_token=f'''
import os

def test_writes_a_log(tmp_path):
    kube = tmp_path / "state" / "kube"
    kube.mkdir(parents=True)
    (kube / "tokens.csv").write_text("{TOKEN},admin,admin,admin\\n")
    os.chmod(kube / "tokens.csv", 0o600)
    (tmp_path / "apply.log").write_text("token {TOKEN}\\n")
''')
    inner_temp = pytester.path / "inner-tmp"
    try:
        result = pytester.runpytest_subprocess(f"--basetemp={inner_temp}", "-p", "no:cacheprovider")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*apply.log: the sandbox token of *tokens.csv*", "*1 passed*"])
    finally:
        import shutil

        shutil.rmtree(inner_temp, ignore_errors=True)  # what it planted is no leak of this session's
