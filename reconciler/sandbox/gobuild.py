"""Build the sandbox's Go programs once from pinned modules (`go install`, or our own Go modules) and reuse them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SaxctlError
from reconciler.sandbox import paths

# name → pinned module@version, built with `go install`; a new Go-built emulator is one more entry here.
GO_TOOLS: dict[str, str] = {
    "fake-gcs-server": "github.com/fsouza/fake-gcs-server@v1.56.1",
    "kwok": "sigs.k8s.io/kwok/cmd/kwok@v0.7.0",
}
# Not the sandbox's: what the tests check the project's own files with, built (the same way) only when a test asks.
LINT_TOOLS: dict[str, str] = {
    "actionlint": "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12",  # the GitHub Actions workflows of examples/
}

# What a build takes on the project's kind of machine (2 cores, Go 1.26.8), shown while the user waits. Measured
# 2026-12-01 with scratch GOCACHE and GOMODCACHE: fake-gcs-server v1.56.1 cold (module download + compile) 3 min 18 s
# and 4 min 53 s wall, 154 s and 178 s of CPU, on cores other builds shared (load 5-8; RECIPES §2 has 1 min 45 s on
# an idle machine); warm (both caches filled, a fresh GOBIN: the link only) 1-7 s.
# kwok v0.7.0: 1 min 10 s idle, 4 min 56 s with the download on a machine other builds shared (2026-12-01).
_EXPECTED_BUILD = {"fake-gcs-server": "about 2-5 min with empty Go caches, seconds with warm ones",
                   "kwok": "about 1-5 min with empty Go caches, seconds with warm ones"}


@dataclass(frozen=True, slots=True)
class GoModule:
    """One of saxctl's own Go modules: its main packages built together, at the versions its go.mod pins.

    For programs that `go install module@version` refuses: k8s.io/kubernetes has replace directives, so it builds
    only inside a module that repeats them (reconciler/sandbox/kube/go/go.mod).
    """

    directory: Path
    binaries: Mapping[str, str]  # binary name → main package
    label: str  # what the user is told is being built
    expected_cold_build: str
    ldflags: str = ""

    def pin(self, name: str) -> str:
        """What the version stamp of binary `name` says: its package and a digest of what go.mod and go.sum pin."""
        digest = hashlib.sha256()
        for part in ((self.directory / "go.mod").read_bytes(), (self.directory / "go.sum").read_bytes(),
                     self.ldflags.encode()):
            digest.update(hashlib.sha256(part).digest())
        return f"{self.binaries[name]} go.mod+go.sum+ldflags sha256:{digest.hexdigest()[:16]}"


KUBERNETES_VERSION = "v1.34.4"  # must equal k8s.io/kubernetes in kube/go/go.mod (a test checks)


def _kubernetes_ldflags(version: str) -> str:
    """What Kubernetes' release build stamps (hack/lib/version.sh), without which the binaries say v0.0.0-master.

    `gitTreeState=archive` is upstream's word for a build from a source archive rather than a git checkout; the
    commit is left empty since the module archive does not carry it. `-s -w` (no symbol table, no DWARF), as
    upstream's release binaries: kube-apiserver is 102 MB instead of 146 MB.
    """
    major, minor, _ = version.removeprefix("v").split(".")
    stamps = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitCommit": "", "gitTreeState": "archive"}
    return " ".join(["-s", "-w"] + [f"-X {package}.{name}={value}" for package in
                                    ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
                                    for name, value in stamps.items()])


KUBE_CONTROL_PLANE = GoModule(
    directory=Path(__file__).resolve().parent / "kube" / "go",
    binaries={"etcd": "go.etcd.io/etcd/server/v3",
              "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
              "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
              "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
              "kubectl": "k8s.io/kubernetes/cmd/kubectl"},
    label=f"the Kubernetes control plane (Kubernetes {KUBERNETES_VERSION}, etcd v3.6.4)",
    # Measured 2026-12-01 with empty Go caches: 9 min 29 s with the download on a machine other builds shared (the
    # whole sandbox 18 min 37 s for 16.6 CPU-minutes); relinking from a warm build cache, 18 s.
    expected_cold_build="~6-10 min",
    ldflags=_kubernetes_ldflags(KUBERNETES_VERSION),
)
GO_MODULES: tuple[GoModule, ...] = (KUBE_CONTROL_PLANE,)
_MODULE_OF = {name: module for module in GO_MODULES for name in module.binaries}


class BuildError(SaxctlError):
    """Go is missing, or a pinned emulator failed to build."""


def ensure_binary(name: str, say: Callable[[str], None]) -> Path:
    """The path of the built `name`, building it first if this bin dir has no binary of the pinned version.

    A binary of one of our Go modules is built together with the module's other binaries (one `go build`: Go
    compiles the packages they share once, on every core).
    """
    bin_dir = paths.bin_dir()
    binary = bin_dir / name
    if _is_current(binary, _pin(name)):
        return binary
    bin_dir.mkdir(parents=True, exist_ok=True)
    # Several test sessions may start at once: one builds, the others wait and reuse its binary.
    with open(bin_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_current(binary, _pin(name)):
            if name in _MODULE_OF:
                _build_module(_MODULE_OF[name], bin_dir, say)
            else:
                _install(name, {**GO_TOOLS, **LINT_TOOLS}[name], binary, say)
    return binary


def ensure_all(say: Callable[[str], None]) -> dict[str, Path]:
    """Every Go program the sandbox uses, built if needed (the tests' session start, before any test's timeout)."""
    return {name: ensure_binary(name, say) for name in [*GO_TOOLS, *_MODULE_OF]}


def _pin(name: str) -> str:
    """What the version stamp of `name` must say: its module@version, or for our modules what go.mod/go.sum pin."""
    module = _MODULE_OF.get(name)
    return {**GO_TOOLS, **LINT_TOOLS}[name] if module is None else module.pin(name)


def _stamp(binary: Path) -> Path:
    return binary.with_name(binary.name + ".version")


def _is_current(binary: Path, pin: str) -> bool:
    stamp = _stamp(binary)
    return binary.is_file() and stamp.is_file() and stamp.read_text().strip() == pin


def _go(what: str, hint_binary: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            f"Go is needed to build {what} for the sandbox, and `go` is not on PATH",
            hint=f"Install Go (https://go.dev/dl/), or put a {hint_binary} binary in a directory and set "
                 "SAXCTL_SANDBOX_BIN to it",
        )
    return go


def _install(name: str, module: str, binary: Path, say: Callable[[str], None]) -> None:
    go = _go(f"{name} ({module})", name)
    version = module.rsplit("@", 1)[1]
    say(f"building {name} {version} (first run only, {_EXPECTED_BUILD.get(name, 'a few minutes')})...")
    log_path = binary.with_name(name + ".build.log")
    started = time.monotonic()
    # Install into a scratch GOBIN, then rename: nobody ever sees a half-written binary.
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix=f".{name}-") as scratch:
        _run([go, "install", module], {"GOBIN": scratch}, None, log_path, f"building {name} ({module})")
        built = Path(scratch) / _go_output_name(module.split("@")[0])
        if not built.is_file():
            raise BuildError(f"building {name} ({module}) made no binary {built.name}", hint=f"Full log: {log_path}")
        os.replace(built, binary)
    _stamp(binary).write_text(module + "\n")
    say(f"built {name} {version} in {time.monotonic() - started:.0f} s → {binary}")


def _build_module(module: GoModule, bin_dir: Path, say: Callable[[str], None]) -> None:
    names = ", ".join(module.binaries)
    go = _go(f"{module.label}", next(iter(module.binaries)))
    say(f"building {module.label}: {names} (first run only: {module.expected_cold_build} on 2 cores with a cold Go "
        "cache, seconds once Go's build cache holds it)...")
    log_path = bin_dir / f"{module.directory.parent.name}.build.log"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=bin_dir, prefix=f".{module.directory.parent.name}-") as scratch:
        # CGO off: static binaries linked by Go's own linker, as upstream ships them; no C toolchain needed.
        # -buildvcs=false: the module sits in saxctl's checkout, whose git state says nothing about these programs.
        command = [go, "build", "-buildvcs=false", f"-ldflags={module.ldflags}", "-o", scratch + os.sep,
                   *module.binaries.values()]
        _run(command, {"CGO_ENABLED": "0"}, module.directory, log_path, f"building {module.label}")
        for name, package in module.binaries.items():
            built = Path(scratch) / _go_output_name(package)
            if not built.is_file():
                raise BuildError(f"building {module.label} made no binary for {package}", hint=f"Full log: {log_path}")
            os.replace(built, bin_dir / name)
            _stamp(bin_dir / name).write_text(module.pin(name) + "\n")
    say(f"built {names} in {time.monotonic() - started:.0f} s → {bin_dir}")


def _run(command: list[str], env: dict[str, str], cwd: Path | None, log_path: Path, what: str) -> None:
    with open(log_path, "w") as log:
        result = subprocess.run(command, env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise BuildError(f"{what} failed with exit code {result.returncode}:\n{tail}", hint=f"Full log: {log_path}")


def _go_output_name(package: str) -> str:
    """The file `go build -o DIR/` or `go install` writes for a main package: its last path element, skipping a
    major-version suffix (go.etcd.io/etcd/server/v3 → server)."""
    elements = package.split("/")
    return elements[-2] if len(elements) > 1 and re.fullmatch(r"v[0-9]+", elements[-1]) else elements[-1]


if __name__ == "__main__":
    ensure_all(lambda message: print(message, flush=True))
