"""Where the sandbox keeps its state (pids, ports, logs, data) and the binaries it builds from Go modules."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import reconciler


def state_dir() -> Path:
    """$SAXCTL_SANDBOX_DIR, else <checkout>/.sandbox/state in a source checkout, else the per-user state dir.

    Keyed to the checkout so that two checkouts on one machine never share (and stop) each other's sandbox; an
    installed saxctl has no checkout and keeps one sandbox per user ($XDG_STATE_HOME or ~/.local/state).
    """
    explicit = os.environ.get("SAXCTL_SANDBOX_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    checkout = source_checkout()
    if checkout is not None:
        return checkout / ".sandbox" / "state"
    xdg_state = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg_state).expanduser() if xdg_state else Path.home() / ".local" / "state"
    return (base / "saxctl" / "sandbox").resolve()


def owner() -> str:
    """Who this saxctl starts sandboxes for: its checkout, or (installed) the user. Recorded in the state file."""
    checkout = source_checkout()
    if checkout is not None:
        return f"checkout {checkout}"
    try:
        return f"user {getpass.getuser()}"
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"user {os.getuid()}"


def source_checkout() -> Path | None:
    """The repository root when saxctl runs from a source checkout (pyproject.toml above the package), else None."""
    root = Path(reconciler.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def bin_dir() -> Path:
    """$SAXCTL_SANDBOX_BIN, else <repo>/.sandbox/bin in a checkout, else <state dir>/bin.

    Binaries live apart from the state dir so that a test's temporary sandbox reuses the one build.
    """
    explicit = os.environ.get("SAXCTL_SANDBOX_BIN")
    if explicit:
        return Path(explicit).expanduser().resolve()
    checkout = source_checkout()
    return checkout / ".sandbox" / "bin" if checkout else state_dir() / "bin"


def jax_cache_dir() -> Path:
    """XLA's compiled programs for the sandbox's model servers: <repo>/.sandbox/jax-cache in a checkout, else
    <state dir>/jax-cache. Outside any one sandbox's state, so that temporary sandboxes and restarts reuse them."""
    checkout = source_checkout()
    return checkout / ".sandbox" / "jax-cache" if checkout else state_dir() / "jax-cache"


def state_file() -> Path:
    return state_dir() / "state.json"


def logs_dir() -> Path:
    return state_dir() / "logs"


def pids_dir() -> Path:
    return state_dir() / "pids"


def sample_checkpoint_dir() -> Path:
    """Where `saxctl sandbox sample-checkpoint` (and so the demo) writes its small random GPT-J by default."""
    return state_dir() / "samples" / "gptj"


def data_dir(emulator: str) -> Path:
    """Stored data of one emulator; `saxctl sandbox down --purge` deletes every one."""
    return state_dir() / "data" / emulator
