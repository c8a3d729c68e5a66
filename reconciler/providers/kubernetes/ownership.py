"""How saxctl marks what it makes in a cluster: two labels on every object, and an ApplySet recording them.

The ApplySet is upstream's (KEP-3659, what `kubectl apply --prune --applyset` uses): a parent object — here a
ConfigMap per spec and namespace — carries the `applyset.kubernetes.io/id` label and the tooling and
contains-group-kinds annotations; every member carries `applyset.kubernetes.io/part-of: <id>`. Listing the parent's
group-kinds by that label finds everything saxctl made here, including what has since left the spec (pruning).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Mapping

from reconciler import __version__

MANAGED_BY = "app.kubernetes.io/managed-by"  # value "saxctl"
SPEC_LABEL = "saxctl-spec"  # value: metadata.name of the owning spec (as on buckets and clusters)
APPLYSET_ID = "applyset.kubernetes.io/id"
PART_OF = "applyset.kubernetes.io/part-of"
TOOLING = "applyset.kubernetes.io/tooling"
CONTAINS_GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
TOOL = f"saxctl/v{__version__}"


def parent_name(spec_name: str) -> str:
    return f"saxctl-{spec_name}"


def applyset_id(parent: str, namespace: str) -> str:
    """The id KEP-3659 defines for a ConfigMap parent: base64url(sha256(NAME.NAMESPACE.KIND.GROUP)), unpadded."""
    digest = hashlib.sha256(f"{parent}.{namespace}.ConfigMap.".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


def mark(spec_name: str) -> dict[str, str]:
    return {MANAGED_BY: "saxctl", SPEC_LABEL: spec_name}


def member_labels(spec_name: str, set_id: str) -> dict[str, str]:
    return {**mark(spec_name), PART_OF: set_id}


def owner(labels: Mapping[str, str] | None) -> str | None:
    """The spec named by saxctl's mark, or None when the object carries no mark."""
    labels = labels or {}
    return labels.get(SPEC_LABEL, "") if labels.get(MANAGED_BY) == "saxctl" else None


def group_kinds(listed: str | None) -> list[str]:
    """The group-kinds a parent's contains-group-kinds annotation lists (`Deployment.apps`, `Service`)."""
    return [item for item in (listed or "").split(",") if item]
