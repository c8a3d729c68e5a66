"""A plan as GitHub-flavoured Markdown, for pull-request review of spec changes."""

from __future__ import annotations

from reconciler.engine.diffing import show_value
from reconciler.engine.plan import Plan
from reconciler.engine.resource import Action

ICON = {Action.CREATE: "➕", Action.UPDATE: "✏️", Action.REPLACE: "♻️", Action.DELETE: "🗑️", Action.NOOP: "✔️"}


def plan_markdown(plan: Plan) -> str:
    lines = [f"### saxctl plan: `{plan.spec.name}` ({plan.mode})", ""]
    summary = ", ".join(f"**{plan.count(a)}** to {a.value}" for a in (Action.CREATE, Action.UPDATE, Action.REPLACE,
                                                                      Action.DELETE))
    lines += [f"{summary}, {plan.count(Action.NOOP)} unchanged.", ""]
    actionable = plan.actionable
    if actionable:
        lines += ["| | address | action | why |", "|---|---|---|---|"]
        for change in actionable:
            lines.append(f"| {ICON[change.action]} | `{change.address}` | {change.action.value} | {_cell(change.reason)} |")
        lines.append("")
        for change in actionable:
            if not change.field_changes:
                continue
            lines += [f"<details><summary><code>{change.address}</code>: {len(change.field_changes)} field(s)</summary>",
                      "", "| field | before | after |", "|---|---|---|"]
            for field in change.field_changes:
                forced = " (forces replacement)" if field.forces_replacement else ""
                lines.append(f"| `{field.path}`{forced} | `{_cell(show_value(field.before))}` | "
                             f"`{_cell(show_value(field.after))}` |")
            lines += ["", "</details>", ""]
    elif plan.applicable:
        lines += ["No changes: the live state matches the spec.", ""]
    for change in actionable:
        if change.hazard is not None:
            agreed = f" (agreed: `{change.hazard.approved_by}`)" if change.hazard.approved_by else ""
            lines += [f"> ⚠️ `{change.address}`: {change.hazard.what}{agreed}", ""]
    if plan.conflicts:
        lines += ["#### ⛔ Conflicts", ""] + [f"- `{c.address}`: {c.message}" for c in plan.conflicts] + [""]
    if plan.problems:
        lines += ["#### ⛔ Would fail", ""] + [f"- `{p.address}` (`{p.field}`): {p.message}" for p in plan.problems] + [""]
    if plan.blocked:
        lines += ["#### ⛔ Blocked", ""] + [f"- `{b.address}`: {b.message}; {b.hint}" for b in plan.blocked] + [""]
    if plan.unmanaged:
        lines += ["#### Not managed yet", ""] + [f"- `{u.address}` (from `{u.spec_field}`)" for u in plan.unmanaged] + [""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
