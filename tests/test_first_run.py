"""A new user's first run, as the README tells it: the demo, then its closing lines and the README's after-demo lines
pasted into fresh shells (no GPTJ_CHECKPOINT exported, no activated venv), and `make install`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
SPEC = "specs/gptj-v5e-2x2.yaml"
TIMEOUT_S = 280  # the demo's first sandbox start may build fake-gcs-server
# What a fresh login shell has: none of the sandbox's exports, no checkpoint of the user's own.
NOT_IN_A_NEW_SHELL = ("STORAGE_EMULATOR_HOST", "SAXCTL_SANDBOX_DIR", "SAXCTL_SANDBOX", "GPTJ_CHECKPOINT", "VIRTUAL_ENV")


def new_shell_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_IN_A_NEW_SHELL}
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(part for part in env["PATH"].split(os.pathsep) if part != venv_bin)
    return {**env, "NO_COLOR": "1", "COLUMNS": "200", **extra}


def paste(lines: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run lines in bash as if pasted into a terminal: stdin is a tty, and a confirmation prompt gets 'yes'."""
    controller, terminal = os.openpty()
    try:
        shell = subprocess.Popen(["bash", "-e", "-c", lines], stdin=terminal, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True)
        os.write(controller, b"yes\n")
        output, _ = shell.communicate(timeout=TIMEOUT_S)
    finally:
        os.close(terminal)
        os.close(controller)
    return shell.returncode, output


def readme_after_demo() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- after-demo:[^>]*-->\n```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README.md marks the lines to paste after the demo"
    return block.group(1)


def bucket_exists(endpoint: str, name: str) -> bool:
    return requests.get(f"{endpoint}/storage/v1/b/{name}", timeout=10).status_code == 200


@pytest.fixture
def demo_state(tmp_path):
    """A state dir of the demo's own: the checkout's .sandbox/state may hold the developer's running sandbox."""
    state = tmp_path / "sandbox state"  # a space, so that the pasted lines must quote it
    yield state
    subprocess.run([str(REPO / ".venv" / "bin" / "saxctl"), "sandbox", "down", "--purge"], capture_output=True,
                   env=new_shell_env(SAXCTL_SANDBOX_DIR=str(state)), timeout=60)


def test_after_the_demo_its_closing_lines_and_the_readmes_work_when_pasted(demo_state, tmp_path):
    demo = subprocess.run(["bash", "examples/sandbox-demo.sh"], cwd=REPO, capture_output=True, text=True,
                          env=new_shell_env(SAXCTL_SANDBOX_DIR=str(demo_state)), timeout=TIMEOUT_S)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    closing = demo.stdout.split("look around:\n", 1)[1].split("Stop the sandbox with:", 1)[0]
    assert closing.count("\n") == 5 and "destroy" in closing.splitlines()[-1]
    endpoint = (demo_state / "state.json").read_text().split('"STORAGE_EMULATOR_HOST": "', 1)[1].split('"', 1)[0]

    # The demo's lines, from another directory: they cd to the checkout themselves.
    code, output = paste(closing, new_shell_env(), cwd=tmp_path)
    assert code == 0, output
    assert output.count("in sync") >= 3, output  # status: both buckets and the checkpoint
    assert not bucket_exists(endpoint, "saxctl-demo-sax-data"), "destroy (answered yes) deleted what the demo made"

    saxctl = REPO / ".venv" / "bin" / "saxctl"
    again = subprocess.run(["bash", "-e", "-c", f'eval "$({saxctl} sandbox env)"; {saxctl} apply --auto-approve {SPEC}'],
                           cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S,
                           env=new_shell_env(SAXCTL_SANDBOX_DIR=str(demo_state)))
    assert again.returncode == 0, again.stderr
    assert bucket_exists(endpoint, "saxctl-demo-sax-data")

    # The README's lines, from the checkout, in a shell that knows only where the sandbox's state is.
    code, output = paste(readme_after_demo(), new_shell_env(SAXCTL_SANDBOX_DIR=str(demo_state)), cwd=REPO)
    assert code == 0, output
    assert output.count("in sync") >= 3, output
    assert not bucket_exists(endpoint, "saxctl-demo-sax-data")


def test_make_install_puts_saxctl_on_path_and_uninstall_removes_only_its_link(tmp_path):
    bin_dir = tmp_path / "bin"
    make = ["make", "--no-print-directory", "-o", ".venv/.installed", f"BINDIR={bin_dir}"]
    installed = subprocess.run([*make, "install"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    assert os.readlink(bin_dir / "saxctl") == str(REPO / ".venv" / "bin" / "saxctl")
    assert f"{bin_dir} is not on your PATH" in installed.stdout
    env = new_shell_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    version = subprocess.run(["bash", "-c", "saxctl --version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("saxctl"), version.stderr

    assert subprocess.run([*make, "uninstall"], cwd=REPO, capture_output=True, timeout=60).returncode == 0
    assert not (bin_dir / "saxctl").exists()
    (bin_dir / "saxctl").write_text("#!/bin/sh\n")  # someone else's saxctl
    kept = subprocess.run([*make, "uninstall"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert kept.returncode == 0 and "left alone" in kept.stdout and (bin_dir / "saxctl").exists()
