"""A plan as GitHub-flavoured Markdown for a pull-request comment: the counts first, warnings before the details.

One comment per spec, updated in place: the hidden marker `<!-- saxctl-plan: NAME -->` lets a workflow find its own
comment (Atlantis adds a new one per run, its users' most asked change). GitHub refuses a comment over 65,536
characters: the middle of the details is cut, with a note saying where the whole plan is.
"""

from __future__ import annotations

from reconciler.cost.estimate import Estimate
from reconciler.engine.diffing import show_value
from reconciler.engine.plan import Plan
from reconciler.engine.resource import Action, Change
from reconciler.providers.gke import addresses as gke
from reconciler.units import usd_text

ICON = {Action.CREATE: "➕", Action.UPDATE: "✏️", Action.REPLACE: "♻️", Action.DELETE: "🗑️", Action.NOOP: "✔️"}
GITHUB_COMMENT_LIMIT = 65_536
TABLE_HEADER = ("| | address | action | why |", "|---|---|---|---|")
DEFAULT_FULL_PLAN = "the plan's JSON (`saxctl plan --json`), e.g. uploaded as the workflow's artifact"


def marker(spec_name: str) -> str:
    return f"<!-- saxctl-plan: {spec_name} -->"


def summary(plan: Plan) -> str:
    """`Plan: N to add, N to change, N to replace, N to destroy` (Terraform's words, which reviewers know)."""
    return (f"Plan: {plan.count(Action.CREATE)} to add, {plan.count(Action.UPDATE)} to change, "
            f"{plan.count(Action.REPLACE)} to replace, {plan.count(Action.DELETE)} to destroy")


def plan_markdown(plan: Plan, cost: Estimate | None = None, *, full_plan: str = DEFAULT_FULL_PLAN,
                  limit: int = GITHUB_COMMENT_LIMIT, offline: str | None = None) -> str:
    """offline: what an offline plan says of itself (the world it assumed, what it could not check), under the title."""
    head = [summary(plan), "", marker(plan.spec.name), f"### saxctl plan: `{plan.spec.name}` ({plan.mode})", ""]
    head += [_line(offline), ""] if offline else []
    head += _warnings(plan, cost)
    if cost is not None:
        head += _cost(cost)
    rows, fields = _table(plan, offline is not None), [block for change in plan.actionable
                                                       if (block := _fields(change))]
    tail = _refusals(plan)
    text = _joined(head, rows, fields, tail)
    if len(text) <= limit:
        return text
    return _cut(head, rows, fields, tail, full_plan, limit)


def _joined(*parts: list) -> str:
    return "\n".join(line for part in parts for item in part for line in ([item] if isinstance(item, str) else item))


def _warnings(plan: Plan, cost: Estimate | None) -> list[str]:
    """What a reviewer must not miss, before any detail: data at risk, deletes, slices replaced, exposure, chips."""
    warnings = []
    for change in plan.actionable:
        if change.hazard is not None:
            agreed = f" (agreed: `{change.hazard.approved_by}`)" if change.hazard.approved_by else ""
            warnings.append(f"`{change.address}`: {change.hazard.what}{agreed}")
        elif change.action is Action.DELETE:
            why = "pruned: no longer in the spec" if change.pruned else "deleted"
            warnings.append(f"`{change.address}` is {why}")
        if change.action is Action.REPLACE and change.kind in (gke.CLUSTER, gke.NODE_POOL):
            what = "the cluster" if change.kind == gke.CLUSTER else "a TPU slice"
            warnings.append(f"`{change.address}`: replacing {what} stops what runs on it ({change.reason})")
    if cost is not None:
        for line in cost.lines:
            if line.unit == "chip" and line.after > line.before:
                warnings.append(f"{line.what}: +{line.after - line.before:g} ({line.before:g} → {line.after:g})")
    if not warnings:
        return []
    return ["> [!WARNING]"] + [f"> - {_line(warning)}" for warning in warnings] + [""]


def _cost(cost: Estimate) -> list[str]:
    hours = cost.prices.hours_per_month
    total = cost.monthly_delta
    lines = [f"**Cost:** {usd_text(total, signed=True)} per month ({cost.prices.described})", ""]
    if cost.lines:
        lines += ["| what | before | after | price | per month |", "|---|---|---|---|---|"]
        for line in cost.lines:
            delta = line.monthly_delta(hours)
            price = "not in the price table: give it with `--prices FILE`"
            if line.price is not None:
                unconfirmed = "" if line.price.confirmed else " (unconfirmed)"
                price = f"{usd_text(line.price.usd)}/{line.unit}-hour{unconfirmed}"
            lines.append(f"| {line.what} | {line.before:g} | {line.after:g} | {price} | "
                         f"{'—' if delta is None else usd_text(delta, signed=True)} |")
        lines.append("")
    if cost.unconfirmed:
        lines += ["Prices marked unconfirmed could not be read from their source page on the table's date; "
                  "check them, or give your own with `--prices FILE`.", ""]
    if cost.usage_based:
        names = ", ".join(f"`{address}`" for address in cost.usage_based)
        lines += [f"Buckets ({names}): depends on usage (storage and operations).", ""]
    return lines


def _table(plan: Plan, offline: bool) -> list[str]:
    actionable = plan.actionable
    if not actionable:
        world = "the world the earlier spec left" if offline else "the live state"
        return [f"No changes: {world} matches the spec.", ""] if plan.applicable else []
    rows = [f"| {ICON[c.action]} | `{c.address}` | {c.action.value} | {_cell(c.reason)} |" for c in actionable]
    return [*TABLE_HEADER, *rows, ""]


def _fields(change: Change) -> list[str]:
    if not change.field_changes:
        return []
    lines = [f"<details><summary><code>{change.address}</code>: {len(change.field_changes)} field(s)</summary>",
             "", "| field | before | after |", "|---|---|---|"]
    for field in change.field_changes:
        forced = " (forces replacement)" if field.forces_replacement else ""
        lines.append(f"| `{field.path}`{forced} | `{_cell(show_value(field.before))}` | "
                     f"`{_cell(show_value(field.after))}` |")
    return lines + ["", "</details>", ""]


def _refusals(plan: Plan) -> list[str]:
    lines = []
    if plan.conflicts:
        lines += ["#### ⛔ Conflicts", ""] + [f"- `{c.address}`: {_line(c.message)}" for c in plan.conflicts] + [""]
    if plan.problems:
        lines += ["#### ⛔ Would fail", ""]
        lines += [f"- `{p.address}` (`{p.field}`): {_line(p.message)}" for p in plan.problems] + [""]
    if plan.blocked:
        lines += ["#### ⛔ Blocked", ""] + [f"- `{b.address}`: {_line(b.message)}; {b.hint}" for b in plan.blocked]
        lines.append("")
    if plan.unmanaged:
        lines += ["#### Not managed yet", ""]
        lines += [f"- `{u.address}` (from `{u.spec_field}`)" for u in plan.unmanaged] + [""]
    return lines


def _cut(head: list[str], rows: list[str], fields: list[list[str]], tail: list[str], full_plan: str,
         limit: int) -> str:
    """Over GitHub's limit: keep the table of changes whole and as many field details as fit, in order; if the table
    alone does not fit, keep its first and last rows and cut its middle. A note says what was cut and where it is."""
    def note(what: str) -> list[str]:
        return ["", f"> ✂️ {what} cut here to stay under GitHub's {limit:,}-character limit for a comment; "
                    f"the whole plan is in {full_plan}.", ""]

    budget = limit - len(_joined(head, note(f"{len(rows):,} rows of the table and {len(fields):,} field details"),
                                 tail)) - 2
    if len(_joined(rows)) + 1 <= budget:
        kept, used = [], len(_joined(rows)) + 1
        for block in fields:
            size = len(_joined(block)) + 1
            if used + size > budget:
                break
            kept.append(block)
            used += size
        cut = note(f"the field details of {len(fields) - len(kept):,} change(s)")
        return _joined(head, rows, kept, cut, tail)
    body = rows[len(TABLE_HEADER):-1]
    first, last, used = [], [], len(_joined(TABLE_HEADER)) * 2 + 2
    for index, row in enumerate(body[:len(body) // 2]):
        if used + len(row) + len(body[-1 - index]) + 2 > budget:
            break
        first.append(row)
        last.insert(0, body[-1 - index])
        used += len(row) + len(body[-1 - index]) + 2
    cut = note(f"{len(body) - len(first) - len(last):,} rows of the table and every change's field details")
    return _joined(head, TABLE_HEADER, first, cut, TABLE_HEADER, last, tail)


def _line(text: str) -> str:
    return text.replace("\n", " ")


def _cell(text: str) -> str:
    return _line(text).replace("|", "\\|")
