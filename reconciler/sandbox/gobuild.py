"""Build the sandbox's Go emulators once from pinned modules (`go install`) and reuse the binaries."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.errors import SaxctlError
from reconciler.sandbox import paths

# name → pinned module@version; a new Go-built emulator is one more entry here.
GO_TOOLS: dict[str, str] = {
    "fake-gcs-server": "github.com/fsouza/fake-gcs-server@v1.56.1",
}

# What a build takes on the project's kind of machine (2 cores, Go 1.26.8), shown while the user waits. Measured
# 2026-12-01 with scratch GOCACHE and GOMODCACHE: fake-gcs-server v1.56.1 cold (module download + compile) 3 min 18 s
# and 4 min 53 s wall, 154 s and 178 s of CPU, on cores other builds shared (load 5-8; RECIPES §2 has 1 min 45 s on
# an idle machine); warm (both caches filled, a fresh GOBIN: the link only) 1-7 s.
_EXPECTED_BUILD = {"fake-gcs-server": "about 2-5 min with empty Go caches, seconds with warm ones"}


class BuildError(SaxctlError):
    """Go is missing, or a pinned emulator failed to build."""


def ensure_binary(name: str, say: Callable[[str], None]) -> Path:
    """The path of the built `name`, building it first if this bin dir has no binary of the pinned version."""
    module = GO_TOOLS[name]
    bin_dir = paths.bin_dir()
    binary = bin_dir / name
    if _is_current(binary, module):
        return binary
    bin_dir.mkdir(parents=True, exist_ok=True)
    # Several test sessions may start at once: one builds, the others wait and reuse its binary.
    with open(bin_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_current(binary, module):
            _build(name, module, binary, say)
    return binary


def _stamp(binary: Path) -> Path:
    return binary.with_name(binary.name + ".version")


def _is_current(binary: Path, module: str) -> bool:
    stamp = _stamp(binary)
    return binary.is_file() and stamp.is_file() and stamp.read_text().strip() == module


def _build(name: str, module: str, binary: Path, say: Callable[[str], None]) -> None:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            f"Go is needed to build {name} ({module}) for the sandbox, and `go` is not on PATH",
            hint=f"Install Go (https://go.dev/dl/), or put a {name} binary in a directory and set "
                 "SAXCTL_SANDBOX_BIN to it",
        )
    version = module.rsplit("@", 1)[1]
    say(f"building {name} {version} (first run only, {_EXPECTED_BUILD.get(name, 'a few minutes')})...")
    log_path = binary.with_name(name + ".build.log")
    started = time.monotonic()
    # Install into a scratch GOBIN, then rename: nobody ever sees a half-written binary.
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix=f".{name}-") as scratch:
        with open(log_path, "w") as log:
            result = subprocess.run([go, "install", module], env={**os.environ, "GOBIN": scratch},
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
        built = Path(scratch) / module.split("@")[0].rsplit("/", 1)[1]
        if result.returncode != 0 or not built.is_file():
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise BuildError(f"building {name} ({module}) failed with exit code {result.returncode}:\n{tail}",
                             hint=f"Full log: {log_path}")
        os.replace(built, binary)
    _stamp(binary).write_text(module + "\n")
    say(f"built {name} {version} in {time.monotonic() - started:.0f} s → {binary}")
