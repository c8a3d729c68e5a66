"""Identifiers the server chooses, stable per input so that every emulator gives a project the same number."""

from __future__ import annotations

import hashlib


def project_number(project_id: str) -> str:
    """A stable 12-digit number per project id, as the APIs report projectNumber (and RM v3 names projects/N)."""
    return str(100_000_000_000 + _digest_int(project_id) % 900_000_000_000)


def numeric_id(*parts: str) -> str:
    """A stable uint64 resource id (compute's `id`), as a decimal string."""
    return str(_digest_int(*parts) % 2**63)


def hex_id(*parts: str, length: int = 8) -> str:
    """A stable hex id (GKE instance-group hashes, cluster ids, label fingerprints)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:length]


def _digest_int(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest(), 16)
