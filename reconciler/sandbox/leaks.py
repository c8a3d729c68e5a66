"""Secrets where they must not be: a scan of what a run left on disk (outputs, logs, plan files, request logs).

The sandbox's bearer tokens and private keys are written only to its secret files: 0600 files under a state dir's
`kube/` (tokens.csv, the kubeconfigs, the PKI's keys) and the state file that keeps `sandbox env`'s exports. Any
other file holding one of those values, a PEM private key, a service-account key or a bearer header is a leak.
`python -m reconciler.sandbox.leaks DIR...` scans trees (the test suite scans its own temporary tree at its end).
"""

from __future__ import annotations

import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

MAX_BYTES = 16 * 2**20  # larger files are checkpoints and binaries, not logs or plans
PATTERNS = {
    "a PEM private key": re.compile(rb"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----"),
    "a service-account key": re.compile(rb'"private_key"\s*:\s*"-----BEGIN'),
    "a bearer token in a header": re.compile(rb"(?i)authorization:\s*bearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    "a Google access token": re.compile(rb"\bya29\.[A-Za-z0-9._-]{20,}"),
}


@dataclass(frozen=True, slots=True)
class Leak:
    path: Path
    what: str  # "the sandbox token of /tmp/.../kube/tokens.csv", "a PEM private key"

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def is_secret_file(path: Path) -> bool:
    """A file the sandbox writes its secrets to on purpose: 0600, in a state dir's kube/ or the state file itself."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    private = stat.S_IMODE(mode) & 0o077 == 0
    return private and ("kube" in path.parts or (path.name == "state.json" and (path.parent / "kube").is_dir()))


def scan(roots: Iterable[Path]) -> list[Leak]:
    files = [path for root in roots for path in _files(root)]
    holders = [path for path in files if is_secret_file(path)]
    known = {value: f"the sandbox token of {holder}" for holder in holders if holder.name == "tokens.csv"
             for value in _tokens(holder)}
    leaks = []
    for path in files:
        if path in holders:
            continue
        content = _read(path)
        if content is None:
            continue
        leaks += [Leak(path, what) for value, what in known.items() if value in content]
        leaks += [Leak(path, what) for what, pattern in PATTERNS.items() if pattern.search(content)]
    return leaks


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def _read(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _tokens(token_file: Path) -> list[bytes]:
    """The tokens of a kube-apiserver static token file: the first field of each line."""
    content = _read(token_file) or b""
    return [line.split(b",")[0] for line in content.splitlines() if len(line.split(b",")[0]) >= 16]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m reconciler.sandbox.leaks DIR...", file=sys.stderr)
        return 2
    leaks = scan(Path(arg) for arg in argv)
    for leak in leaks:
        print(leak)
    print(f"{len(leaks)} secret(s) found outside the sandbox's secret files", file=sys.stderr)
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
