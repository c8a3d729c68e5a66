"""Whose sandbox it is: each checkout keeps its own, says whose it is, and stops only its own (real processes).

A second checkout is a copy of the package beside a pyproject.toml, run with `python -m reconciler` from there: the
same code as a clone, found by Python before the editable install.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.sandbox import paths

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 280  # covers a first-run build of fake-gcs-server
SANDBOX_VARIABLES = ("STORAGE_EMULATOR_HOST", "SAXCTL_SANDBOX_DIR", "SAXCTL_SANDBOX", "GPTJ_CHECKPOINT")


@pytest.fixture
def other_checkout(tmp_path):
    checkout = tmp_path / "other-checkout"
    checkout.mkdir()
    shutil.copytree(REPO / "reconciler", checkout / "reconciler", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", checkout)
    yield checkout
    for state in (checkout / ".sandbox" / "state", tmp_path / "shared-state"):
        sandbox(checkout, "down", "--force", state_dir=state)  # whatever a failed test left running


def sandbox(checkout: Path, *args: str, state_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`saxctl sandbox ARGS` run from checkout's own code, reusing the session's emulator binaries."""
    env = {key: value for key, value in os.environ.items() if key not in SANDBOX_VARIABLES}
    env.update(NO_COLOR="1", COLUMNS="200", SAXCTL_SANDBOX_BIN=str(paths.bin_dir()))
    if state_dir is not None:
        env["SAXCTL_SANDBOX_DIR"] = str(state_dir)
    return subprocess.run([sys.executable, "-m", "reconciler", "sandbox", *args], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def test_without_an_override_the_state_is_the_checkouts(monkeypatch, tmp_path):
    monkeypatch.delenv("SAXCTL_SANDBOX_DIR", raising=False)
    assert paths.state_dir() == REPO / ".sandbox" / "state"
    assert paths.owner() == f"checkout {REPO}"
    monkeypatch.setattr(paths, "source_checkout", lambda: None)  # as when installed from a wheel
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert paths.state_dir() == tmp_path / ".local" / "state" / "saxctl" / "sandbox"
    assert paths.owner().startswith("user ")


def test_another_checkout_starts_its_own_sandbox_in_its_own_tree(other_checkout):
    started = sandbox(other_checkout, "up")
    assert started.returncode == 0, started.stderr
    own_state = other_checkout / ".sandbox" / "state"
    assert f"started from this checkout {other_checkout}; state in {own_state}" in started.stderr
    assert f"export SAXCTL_SANDBOX_DIR={own_state}\n" in started.stdout
    assert (own_state / "state.json").is_file()
    stopped = sandbox(other_checkout, "down")
    assert stopped.returncode == 0 and "sandbox stopped" in stopped.stderr, stopped.stderr


def test_a_sandbox_another_checkout_started_is_named_as_theirs_and_stopped_only_with_force(other_checkout, tmp_path):
    """The case that broke a demo: a shell pointed at one checkout's sandbox ran the other checkout's `down`."""
    shared = tmp_path / "shared-state"
    assert sandbox(other_checkout, "up", state_dir=shared).returncode == 0
    theirs = f"started from checkout {other_checkout}, not this checkout {REPO}"

    again = sandbox(REPO, "up", state_dir=shared)
    assert again.returncode == 0 and f"sandbox already up since " in again.stderr and theirs in again.stderr
    status = sandbox(REPO, "status", state_dir=shared)
    assert status.returncode == 0 and theirs in status.stderr

    refused = sandbox(REPO, "down", state_dir=shared)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"the sandbox in {shared} was {theirs}: stopping it would break what runs there" in refused.stderr
    assert "--force" in refused.stderr
    assert sandbox(other_checkout, "status", state_dir=shared).returncode == 0, "still up for its owner"

    forced = sandbox(REPO, "down", "--force", state_dir=shared)
    assert forced.returncode == 0 and "sandbox stopped" in forced.stderr
    assert sandbox(other_checkout, "status", state_dir=shared).returncode == 1


def test_the_sample_checkpoint_is_exported_while_it_exists_unless_the_user_set_one(other_checkout):
    own_state = other_checkout / ".sandbox" / "state"
    assert sandbox(other_checkout, "up").returncode == 0
    assert "GPTJ_CHECKPOINT" not in sandbox(other_checkout, "env").stdout, "no sample written yet"
    written = sandbox(other_checkout, "sample-checkpoint")
    assert written.returncode == 0 and str(own_state / "samples" / "gptj") in written.stderr
    assert f"export GPTJ_CHECKPOINT={own_state / 'samples' / 'gptj'}\n" in sandbox(other_checkout, "env").stdout
    assert f"export GPTJ_CHECKPOINT=" in sandbox(other_checkout, "up").stdout

    script = ('export GPTJ_CHECKPOINT=/my/own; eval "$(python -m reconciler sandbox env)"; echo "$GPTJ_CHECKPOINT"; '
              'eval "$(python -m reconciler sandbox env --unset)"; echo "${GPTJ_CHECKPOINT-unset}"; '
              'unset GPTJ_CHECKPOINT; eval "$(python -m reconciler sandbox env)"; '
              'eval "$(python -m reconciler sandbox env --unset)"; echo "${GPTJ_CHECKPOINT-unset}"')
    env = {key: value for key, value in os.environ.items() if key not in SANDBOX_VARIABLES}
    shell = subprocess.run(["bash", "-ec", script], cwd=other_checkout, capture_output=True, text=True,
                           env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}, timeout=TIMEOUT_S)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines() == ["/my/own", "/my/own", "unset"], "a value of the user's own is kept"

    assert sandbox(other_checkout, "down", "--purge").returncode == 0
    assert not (own_state / "samples").exists()
