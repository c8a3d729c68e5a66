"""The ownership mark saxctl puts on what it creates, as labels: buckets, clusters and node pools carry the same two."""

from __future__ import annotations

from typing import Mapping

MANAGED_BY = "managed-by"  # label key: value "saxctl" on everything saxctl created
SPEC_LABEL = "saxctl-spec"  # label key: value metadata.name of the owning spec


def mark(spec_name: str) -> dict[str, str]:
    return {MANAGED_BY: "saxctl", SPEC_LABEL: spec_name}


def owner(labels: Mapping[str, str]) -> str | None:
    """The spec name in the mark, or None when the labels carry no saxctl mark."""
    return labels.get(SPEC_LABEL, "") if labels.get(MANAGED_BY) == "saxctl" else None
