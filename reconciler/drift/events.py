"""The Kubernetes Event a drift run leaves on the spec's ApplySet ConfigMap (`saxctl-<metadata.name>`), for the
person on call: `kubectl describe configmap saxctl-NAME` or `kubectl get events` show what drifted and what was done."""

from __future__ import annotations

from typing import Callable

from reconciler.drift.classify import CORRECTED, LEFT, FieldDrift
from reconciler.drift.report import REPORTED, summary
from reconciler.engine.plan import Plan
from reconciler.engine.provider_set import ProviderSet
from reconciler.errors import SaxctlError
from reconciler.providers.kubernetes.addresses import APPLYSET

SHOWN_FIELDS = 5  # the first few fields named in the message (an Event's message is short)


def event_for(drifts: tuple[FieldDrift, ...]) -> tuple[str, str, str] | None:
    """(reason, type, message), or None when nothing drifted (an Event per quiet run would bury the others)."""
    counts = summary(drifts)
    if not counts["drifted"]:
        return None
    acted = [d for d in drifts if d.outcome in (CORRECTED, REPORTED, LEFT)]
    names = ", ".join(f"{d.address} {d.field}".rstrip() for d in acted[:SHOWN_FIELDS])
    more = f" and {len(acted) - SHOWN_FIELDS} more" if len(acted) > SHOWN_FIELDS else ""
    message = (f"{counts['drifted']} field(s) drifted from the spec: {counts[CORRECTED]} corrected, "
               f"{counts[REPORTED]} to correct, {counts[LEFT]} left, {counts['ignored']} ignored: {names}{more}")
    if counts[CORRECTED] and not counts[LEFT] and not counts[REPORTED]:
        return "DriftCorrected", "Normal", message
    return "DriftDetected", "Warning", message


def post_events(plan: Plan, providers: ProviderSet, drifts: tuple[FieldDrift, ...],
                say: Callable[[str], None]) -> list[str]:
    """The Event on each ApplySet ConfigMap the plan read; a failure to post one is said, never fatal."""
    found = event_for(drifts)
    parents = [change.address for change in plan.changes if change.kind == APPLYSET]
    if found is None or not parents:
        return []
    reason, event_type, message = found
    provider = providers.for_kind(APPLYSET)
    posted = []
    for address in parents:
        try:
            where = provider.record_event(address, reason, message, event_type)
        except SaxctlError as error:
            say(f"Warning: no {reason} Event on {address}: {error.message}")
            continue
        if where:
            posted.append(where)
    return posted
