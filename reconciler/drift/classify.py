"""Decide, for each drifted field of a live plan, what the unattended corrector does with it. Pure: no API call.

A field is *ignored* when a `drift.ignore` rule covers it, *settling* when nobody changed it and the object is on its
own way to the spec (a model Sax is loading: its change only waits), *corrected* when the change that carries it is
safe to make without a person (an in-place update, or creating what is missing), and *left* otherwise: a replace or
delete without its --allow-replace / --allow-delete, a field another field manager applied (never forced), a field the
corrector keeps setting back (a fight with another controller), or an update mixing ignored fields with others (a
provider applies a whole object, so it would undo the ignored ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from reconciler.engine.plan import Approvals, Plan
from reconciler.engine.resource import SETTLING as SETTLING_FACT
from reconciler.engine.resource import Action, Change
from reconciler.providers.kubernetes.compare import applied
from reconciler.spec.model import DriftIgnore

CORRECTED, LEFT, IGNORED, SETTLING = "corrected", "left", "ignored", "settling"
WHOLE_OBJECT = ""  # the field path of a drift that is the whole object (missing, or no longer in the spec)


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One drifted field: what the spec wants, what is live, who changed it (where the API says), what is done."""

    address: str
    field: str  # dotted path as plans print it; "" for the whole object
    desired: Any
    live: Any
    outcome: str  # corrected | left | ignored | settling
    why: str  # for left and ignored: in plain words; for corrected: the change made
    changed_by: Mapping[str, Any] | None = None  # {"manager": ..., "time": ...} or {"updated": ...}

    @property
    def key(self) -> str:
        """How the fight-loop record names the field."""
        return f"{self.address} {self.field}" if self.field else self.address


@dataclass(frozen=True, slots=True)
class Decision:
    drifts: tuple[FieldDrift, ...]
    to_apply: tuple[str, ...]  # the addresses whose change the corrector makes (when --correct)

    def count(self, outcome: str) -> int:
        return sum(1 for drift in self.drifts if drift.outcome == outcome)


def ignored_by(rules: Sequence[DriftIgnore], address: str, field: str) -> DriftIgnore | None:
    """The rule covering this field, if any: same address, and a rule field equal to the path or above it."""
    for rule in rules:
        if rule.address != address:
            continue
        if not rule.fields or any(_covers(path, field) for path in rule.fields):
            return rule
    return None


def _covers(rule_path: str, field: str) -> bool:
    return field == rule_path or field.startswith(rule_path + ".") or field.startswith(rule_path + "[")


def classify(plan: Plan, rules: Sequence[DriftIgnore], approvals: Approvals = Approvals(), *,
             stopped: Mapping[str, str] | None = None) -> Decision:
    """What to do with each drifted field of plan. `stopped`: field key → why the fight-loop stop holds it."""
    stopped = stopped or {}
    problems = {problem.address: problem.message for problem in plan.problems}
    blocked = {item.address: item.hint for item in plan.blocked}
    drifts: list[FieldDrift] = []
    to_apply: list[str] = []
    for change in plan.actionable:
        settling = _settling(change)
        if settling:
            drifts.append(FieldDrift(change.address, WHOLE_OBJECT, None, None, SETTLING,
                                     f"{settling}: on its way to the spec, nothing to correct"))
            continue
        fields = _fields_of(change)
        left = _why_left(change, approvals, problems, blocked)
        ignored = {field.key: ignored_by(rules, change.address, field.field) for field in fields}
        acted = [field for field in fields if ignored[field.key] is None]
        if not acted:
            drifts += [_with(field, IGNORED, f"drift.ignore rule for {change.address}") for field in fields]
            continue
        if left is None and len(acted) < len(fields):
            left = ("it mixes ignored fields with others, and the provider applies the whole object: correcting "
                    "it would undo the ignored ones; correct it with `saxctl apply`")
        fought = [stopped[field.key] for field in acted if field.key in stopped]
        if left is None and fought:
            left = fought[0]
        for field in fields:
            if ignored[field.key] is not None:
                drifts.append(_with(field, IGNORED, f"drift.ignore rule for {change.address}"))
            else:
                drifts.append(_with(field, LEFT, left) if left else _with(field, CORRECTED, change.reason))
        if left is None:
            to_apply.append(change.address)
    drifts += [FieldDrift(str(conflict.address), WHOLE_OBJECT, None, conflict.remote_id, LEFT, conflict.message)
               for conflict in plan.conflicts]
    return Decision(tuple(drifts), tuple(to_apply))


def _settling(change: Change) -> str:
    """How far the object has got on its own way to the spec when its change only waits for it (no field differs),
    else "": such a change is not drift, and an apply of it by the corrector would only wait."""
    if change.action is not Action.UPDATE or change.field_changes or change.observed is None:
        return ""
    return change.observed.facts.get(SETTLING_FACT) or ""


def _why_left(change: Change, approvals: Approvals, problems: Mapping[str, str],
              blocked: Mapping[str, str]) -> str | None:
    """Why the corrector may not make this change on its own, or None when it may."""
    facts = change.observed.facts if change.observed is not None else {}
    held = applied(facts.get("conflicts") or ())  # an update's fields (kubectl scale) are drift, set back
    if held:
        holders = ", ".join(sorted({found["manager"] for found in held}))
        return f"held by field manager {holders} (server-side apply); saxctl drift never forces a conflict"
    if change.action is Action.REPLACE and change.address not in approvals.replace:
        return f"needs --allow-replace {change.address}: {change.reason}"
    if change.action is Action.DELETE and change.address not in approvals.delete:
        return f"needs --allow-delete {change.address}: {change.reason}"
    if change.address in blocked:
        return blocked[change.address]
    if change.address in problems:
        return problems[change.address]
    return None


def _fields_of(change: Change) -> list[FieldDrift]:
    """One entry per changed field; a create or delete is one entry for the whole object."""
    who = changed_by(change)
    if change.action in (Action.CREATE, Action.DELETE) or not change.field_changes:
        desired = None if change.action is Action.DELETE else _plain(change.after)
        return [FieldDrift(change.address, WHOLE_OBJECT, desired, _plain(change.before), "", change.reason, who)]
    return [FieldDrift(change.address, field.path, _plain(field.after), _plain(field.before), "", change.reason,
                       _who_for(change, field.path) or who)
            for field in change.field_changes]


def changed_by(change: Change) -> dict[str, Any] | None:
    """Who last changed the object, as far as its API says: the update time (GCS), the managers (Kubernetes)."""
    facts = change.observed.facts if change.observed is not None else {}
    if facts.get("updated"):
        return {"updated": facts["updated"]}
    managers = facts.get("managers")
    if managers:
        return dict(managers[-1])
    return None


def _who_for(change: Change, path: str) -> dict[str, Any] | None:
    """The Kubernetes field manager that set this field out of band, with its time, when the server said so."""
    facts = change.observed.facts if change.observed is not None else {}
    taken = {found["manager"] for found in facts.get("conflicts") or ()}
    for entry in facts.get("managers") or ():
        if entry.get("manager") in taken:
            return dict(entry)
    return None


def _plain(value: Any) -> Any:
    """JSON-friendly: an unknown (known after apply) value shows as its text."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _with(field: FieldDrift, outcome: str, why: str) -> FieldDrift:
    return FieldDrift(field.address, field.field, field.desired, field.live, outcome, why, field.changed_by)


def unknown_addresses(rules: Iterable[DriftIgnore], known: Iterable[str]) -> list[DriftIgnore]:
    """The rules naming an address this spec does not make (a typo would silently ignore nothing)."""
    addresses = set(known)
    return [rule for rule in rules if rule.address not in addresses]


def uncorrected(decision: Decision, result) -> Decision:
    """The decision once the changes were made: a field whose change failed or was skipped is left, saying why."""
    failed = {str(outcome.change.address): outcome.error or outcome.status
              for outcome in result.outcomes if outcome.status != "done"}
    drifts = tuple(_with(drift, LEFT, f"the correction failed: {failed[drift.address]}")
                   if drift.outcome == CORRECTED and drift.address in failed else drift
                   for drift in decision.drifts)
    return Decision(drifts, decision.to_apply)
