"""What a drift run found and did: the JSON document of schemas/drift-report.schema.json, and its text form."""

from __future__ import annotations

from typing import Any

from reconciler.drift.classify import CORRECTED, IGNORED, LEFT, SETTLING, Decision, FieldDrift
from reconciler.engine.diffing import show_value

REPORTED = "reported"  # a report without --correct: a field --correct would set back
OUTCOMES = (CORRECTED, REPORTED, LEFT, IGNORED, SETTLING)


def as_reported(decision: Decision, correct: bool) -> tuple[FieldDrift, ...]:
    """The fields as this run leaves them: without --correct, nothing was corrected, only reported."""
    if correct:
        return decision.drifts
    return tuple(FieldDrift(d.address, d.field, d.desired, d.live, REPORTED, "saxctl drift --correct sets it back",
                            d.changed_by) if d.outcome == CORRECTED else d for d in decision.drifts)


def summary(drifts: tuple[FieldDrift, ...]) -> dict[str, int]:
    counts = {outcome: sum(1 for d in drifts if d.outcome == outcome) for outcome in OUTCOMES}
    return {"drifted": sum(counts[o] for o in (CORRECTED, REPORTED, LEFT)), **counts}


def report_json(spec_name: str, spec_file: str, at: str, correct: bool, drifts: tuple[FieldDrift, ...],
                record_location: str) -> dict[str, Any]:
    return {
        "format_version": 1,
        "spec": {"name": spec_name, "file": spec_file},
        "at": at,
        "correct": correct,
        "summary": summary(drifts),
        "drifts": [{"address": d.address, "field": d.field, "desired": d.desired, "live": d.live,
                    "changed_by": d.changed_by, "outcome": d.outcome, "why": d.why} for d in drifts],
        "record": record_location,
    }


def report_lines(drifts: tuple[FieldDrift, ...]) -> list[str]:
    if not drifts:
        return ["No drift: the world matches the spec."]
    lines = []
    for d in drifts:
        what = (f"{d.field}: {show_value(d.live)} (spec: {show_value(d.desired)})" if d.field
                else "the whole object")
        who = f" [{_who(d.changed_by)}]" if d.changed_by else ""
        lines.append(f"{d.outcome:9} {d.address} {what}{who}: {d.why}")
    counts = summary(drifts)
    settling = f"; {counts[SETTLING]} on its way to the spec by itself" if counts[SETTLING] else ""
    lines.append(f"{counts['drifted']} drifted field(s): {counts[CORRECTED]} corrected, {counts[REPORTED]} to "
                 f"correct, {counts[LEFT]} left; {counts[IGNORED]} ignored by drift.ignore rules{settling}.")
    return lines


def _who(changed_by: dict[str, Any]) -> str:
    if "manager" in changed_by:
        how = f"{changed_by.get('operation', '')} {changed_by.get('subresource', '')}".strip()
        return f"changed by {changed_by['manager']} ({how}) at {changed_by.get('time') or 'an unrecorded time'}"
    return f"last updated at {changed_by.get('updated')}"
