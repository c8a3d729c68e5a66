"""The GitHub Actions workflows of examples/github-actions/ pass actionlint (v1.7.12, built from its Go module into the
sandbox's bin dir on first use), and actionlint does fail a broken workflow: the check can fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.sandbox import gobuild

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / "examples" / "github-actions").glob("*.yml"))
BUILD_TIMEOUT_S = 600  # a cold build downloads the module: about a minute on 2 shared cores, seconds with warm caches


@pytest.fixture(scope="module")
def actionlint() -> Path:
    if shutil.which("go") is None:
        pytest.skip("needs Go to build actionlint")
    return gobuild.ensure_binary("actionlint", lambda message: print(message, flush=True))


def lint(actionlint: Path, *workflows: Path) -> subprocess.CompletedProcess:
    # -shellcheck= and -pyflakes=: the same checks wherever it runs, whether those tools are installed or not.
    return subprocess.run([str(actionlint), "-color=false", "-shellcheck=", "-pyflakes=", *map(str, workflows)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_the_example_workflows_pass_actionlint(actionlint):
    assert WORKFLOWS, "examples/github-actions/ holds the workflows"
    linted = lint(actionlint, *WORKFLOWS)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_a_broken_copy_of_the_workflow_fails_actionlint(actionlint, tmp_path):
    [plan_workflow] = [path for path in WORKFLOWS if path.name == "saxctl-plan.yml"]
    text = plan_workflow.read_text()
    # A job that needs one that does not exist, and an expression reading an output no step declares.
    assert "needs: offline\n" in text and "needs.offline.outputs.specs" in text
    broken = tmp_path / "saxctl-plan.yml"
    broken.write_text(text.replace("needs: offline\n", "needs: offline-plan\n", 1)
                          .replace("steps.plan.outputs.specs", "steps.no-such-step.outputs.specs", 1))
    linted = lint(actionlint, broken)
    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert 'job "live" needs job "offline-plan" which does not exist' in linted.stdout, linted.stdout
    assert "no-such-step" in linted.stdout, linted.stdout
