"""Where the sandbox keeps state and binaries, and how it builds its Go emulators (real `go` runs)."""

import shutil
from pathlib import Path

import pytest

from reconciler.sandbox import gobuild, paths

REPO = Path(__file__).resolve().parents[2]


def test_state_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SAXCTL_SANDBOX_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setattr(paths, "source_checkout", lambda: None)  # installed: the per-user dir (a checkout: its own)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.state_dir() == tmp_path / "home" / ".local" / "state" / "saxctl" / "sandbox"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir() == tmp_path / "xdg" / "saxctl" / "sandbox"
    monkeypatch.setenv("SAXCTL_SANDBOX_DIR", str(tmp_path / "explicit"))
    assert paths.state_dir() == tmp_path / "explicit"
    assert paths.state_file() == tmp_path / "explicit" / "state.json"
    assert paths.data_dir("gcs") == tmp_path / "explicit" / "data" / "gcs"


def test_binaries_live_in_the_checkout_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("SAXCTL_SANDBOX_BIN", raising=False)
    assert paths.source_checkout() == REPO
    assert paths.bin_dir() == REPO / ".sandbox" / "bin"
    monkeypatch.setenv("SAXCTL_SANDBOX_BIN", str(tmp_path / "bin"))
    assert paths.bin_dir() == tmp_path / "bin"


def test_every_go_tool_is_pinned_to_a_version():
    for name, module in gobuild.GO_TOOLS.items():
        path, _, version = module.partition("@")
        assert version.startswith("v") and path.rsplit("/", 1)[1] == name, module


def test_every_package_of_our_go_modules_is_one_its_tools_go_pins_and_go_sum_covers():
    for module in gobuild.GO_MODULES:
        tools = (module.directory / "tools.go").read_text()
        assert "//go:build tools" in tools
        for package in module.binaries.values():
            assert f'_ "{package}"' in tools, package
        go_sum = (module.directory / "go.sum").read_text()
        required = [line.split()[:2] for line in (module.directory / "go.mod").read_text().splitlines()
                    if line.startswith("\t") and "=>" not in line and "// indirect" not in line]
        for path, version in required:
            assert f"{path} {version} h1:" in go_sum, path


@pytest.mark.parametrize("package, output", [("k8s.io/kubernetes/cmd/kubectl", "kubectl"),
                                             ("go.etcd.io/etcd/server/v3", "server"),
                                             ("github.com/fsouza/fake-gcs-server", "fake-gcs-server")])
def test_the_file_go_writes_is_named_as_go_names_it(package, output):
    assert gobuild._go_output_name(package) == output


def test_a_changed_go_mod_makes_every_binary_of_the_module_stale(monkeypatch, tmp_path):
    module_dir = tmp_path / "go"
    shutil.copytree(gobuild.KUBE_CONTROL_PLANE.directory, module_dir)
    module = gobuild.GoModule(directory=module_dir, binaries={"a": "example.com/a", "b": "example.com/b"},
                              label="test", expected_cold_build="-", ldflags="-s")
    before = {name: module.pin(name) for name in module.binaries}
    assert before["a"] != before["b"], "each binary's stamp names its package"
    with open(module_dir / "go.mod", "a") as go_mod:
        go_mod.write("\n// changed\n")
    assert all(module.pin(name) != before[name] for name in module.binaries)


@pytest.fixture
def empty_bin(monkeypatch, tmp_path):
    monkeypatch.setenv("SAXCTL_SANDBOX_BIN", str(tmp_path / "bin"))
    return tmp_path / "bin"


def test_a_failed_build_names_the_module_shows_the_log_tail_and_leaves_nothing(monkeypatch, empty_bin):
    if shutil.which("go") is None:
        pytest.skip("needs Go")
    monkeypatch.setitem(gobuild.GO_TOOLS, "no-such-tool", "example.invalid/no-such-tool@v0.0.1")
    monkeypatch.setenv("GOPROXY", "off")  # fail at once, offline, the way a bad module fails online
    messages = []
    with pytest.raises(gobuild.BuildError) as raised:
        gobuild.ensure_binary("no-such-tool", messages.append)
    assert "building no-such-tool (example.invalid/no-such-tool@v0.0.1) failed with exit code 1" in raised.value.message
    assert "GOPROXY=off" in raised.value.message, "the tail of Go's own output is shown"
    assert raised.value.hint == f"Full log: {empty_bin / 'no-such-tool.build.log'}"
    assert messages == ["building no-such-tool v0.0.1 (first run only, a few minutes)..."]
    assert sorted(p.name for p in empty_bin.iterdir()) == [".build.lock", "no-such-tool.build.log"]


def test_a_binary_of_another_version_is_rebuilt_and_a_current_one_reused(sandbox, empty_bin):
    """Uses the module cache the session's sandbox build filled: no download, a warm compile."""
    running = Path(f"/proc/{sandbox.state['emulators']['fake-gcs-server']['pid']}/exe").resolve()
    empty_bin.mkdir()
    (empty_bin / "fake-gcs-server").write_text("#!/bin/sh\n")
    (empty_bin / "fake-gcs-server.version").write_text("github.com/fsouza/fake-gcs-server@v1.0.0\n")
    messages = []
    binary = gobuild.ensure_binary("fake-gcs-server", messages.append)
    assert messages[0].startswith("building fake-gcs-server v1.56.1")
    assert binary.read_bytes() == running.read_bytes(), "Go builds are reproducible: the same pinned module"
    assert (empty_bin / "fake-gcs-server.version").read_text().strip() == gobuild.GO_TOOLS["fake-gcs-server"]
    messages.clear()
    assert gobuild.ensure_binary("fake-gcs-server", messages.append) == binary and messages == []
