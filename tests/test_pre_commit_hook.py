"""The pre-commit hook as pre-commit runs it: its entry with the changed files that match its `files` pattern."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
SAXCTL = Path(sys.executable).with_name("saxctl")


def hook() -> dict:
    hooks = YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    return next(each for each in hooks if each["id"] == "saxctl-validate")


def run_hook(files: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    """What pre-commit does: the entry, then the staged files its pattern selects (none: the hook is skipped)."""
    selected = [name for name in files if re.search(hook()["files"], name)]
    command, *args = shlex.split(hook()["entry"])
    assert command == "saxctl"
    return subprocess.run([str(SAXCTL), *args, *selected], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_hook_selects_specs_and_not_other_yaml():
    pattern = hook()["files"]
    assert re.search(pattern, "specs/gptj-v5e-2x2.yaml") and re.search(pattern, "deploy/specs/prod.yml")
    assert not re.search(pattern, ".github/workflows/saxctl-plan.yml")


def test_a_changed_valid_spec_passes():
    result = run_hook(["specs/gptj-v5e-2x2.yaml", "README.md"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 spec(s) valid." in result.stderr


def test_a_changed_invalid_spec_fails_with_file_line_and_field(tmp_path):
    (tmp_path / "specs").mkdir()
    text = (REPO / "specs" / "gptj-v5e-2x2.yaml").read_text().replace("topology: 2x2", "topology: 2x3")
    (tmp_path / "specs" / "prod.yaml").write_text(text)
    result = run_hook(["specs/prod.yaml"], cwd=tmp_path)
    assert result.returncode == 3
    assert re.search(r"specs/prod\.yaml:\d+:\d+: cluster\.tpuPools\[0\]\.topology: ", result.stdout), result.stdout
