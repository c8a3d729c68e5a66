"""Which spec documents the JSON Schema check found nothing wrong with, so that a spec checked before is not checked
again: importing jsonschema is a quarter of `saxctl validate` and ~40 ms of every plan.

Only a clean result is remembered, under a key holding everything that check depends on: the document's content as
canonical JSON (1, 1.0 and true stay apart, as the schema's types keep them), the schema, the checking code
(schema.py) and the installed jsonschema and referencing. A document with any problem is checked each time, so
problems are reported exactly as the check finds them. A document canonical JSON cannot tell apart from another (a
key that is not a string, a value that is no JSON value) is never remembered.

The cache is a directory of empty files named by key: $SAXCTL_CACHE_DIR, else $XDG_CACHE_HOME/saxctl, else
~/.cache/saxctl, under schema-clean/; a file's time is its key's last use, and a key unused for 30 days is forgotten
when a new one is remembered. SAXCTL_CACHE_DIR=off turns it off. A cache that cannot be read or written only means
checking again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

_JSON_SCALARS = (str, int, float, bool, type(None))
_CHECKERS = ("jsonschema", "referencing")  # their versions decide what the check finds
UNUSED_DAYS = 30  # a key not used for this long is forgotten


def key(root: Any, schema_bytes: bytes, checking_code: bytes) -> str | None:
    """The cache key of checking root against the schema; None when root must be checked each time."""
    if not _plain_json(root):
        return None
    versions = _installed(_CHECKERS)
    if versions is None:
        return None
    digest = hashlib.sha256()
    for part in (json.dumps(root, sort_keys=True, ensure_ascii=False).encode(), schema_bytes, checking_code,
                 versions.encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def known_clean(cache_key: str) -> bool:
    directory = _directory()
    if directory is None:
        return False
    try:
        if not (directory / cache_key).is_file():
            return False
    except OSError:  # a cache directory this user may not enter (another user's home): check again
        return False
    try:
        os.utime(directory / cache_key)  # its last use, which pruning goes by
    except OSError:
        pass
    return True


def remember_clean(cache_key: str) -> None:
    """Remember a key, and forget those unused for UNUSED_DAYS (only here: a check ran, jsonschema's import cost more)."""
    directory = _directory()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / cache_key).touch()
        unused_since = time.time() - UNUSED_DAYS * 86400
        for entry in os.scandir(directory):
            if entry.stat().st_mtime < unused_since:
                os.unlink(entry.path)
    except OSError:  # a read-only home, a full disk, another run pruning too: the next run checks again
        pass


def _directory() -> Path | None:
    configured = os.environ.get("SAXCTL_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured) / "schema-clean"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "saxctl" / "schema-clean"


def _plain_json(value: Any) -> bool:
    """Only the types canonical JSON writes back distinctly: exact dicts with string keys, lists and JSON scalars."""
    kind = type(value)
    if kind is dict:
        return all(type(name) is str and _plain_json(item) for name, item in value.items())
    if kind is list:
        return all(_plain_json(item) for item in value)
    return kind in _JSON_SCALARS


def _installed(packages: tuple[str, ...]) -> str | None:
    """Each package's installed distribution (its dist-info directory's name holds the version), found without
    importing it or scanning every distribution's metadata; None when one cannot be told."""
    names = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        site = Path(spec.origin).parent.parent
        try:
            found = sorted(entry for entry in os.listdir(site)
                           if entry.lower().startswith(f"{package}-") and entry.endswith(".dist-info"))
        except OSError:
            return None
        if len(found) != 1:
            return None
        names.append(found[0])
    return " ".join(names)
