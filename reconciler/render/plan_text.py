"""A plan as text for a terminal, Terraform-style: one block per change with its reason and field changes."""

from __future__ import annotations

from rich.markup import escape

from reconciler.cost.estimate import Estimate
from reconciler.engine.diffing import show_value
from reconciler.engine.plan import Plan
from reconciler.engine.resource import Action, Change
from reconciler.units import usd_text

SYMBOL = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE: ("~", "yellow"),
    Action.REPLACE: ("-/+", "magenta"),
    Action.DELETE: ("-", "red"),
    Action.NOOP: ("=", "dim"),
}


def plan_markup(plan: Plan, *, show_unchanged: bool = False, offline: str | None = None) -> str:
    """Rich markup; the console strips the styles when stdout is not a terminal. offline: what an offline plan says
    of itself (the world it assumed, what it could not check)."""
    lines: list[str] = []
    verb = "destroy what it owns of" if plan.mode == "destroy" else "reconcile"
    lines.append(f"saxctl will {verb} spec [bold]{escape(plan.spec.name)}[/] ({escape(plan.spec.file)})")
    if offline:
        lines.append(f"[yellow]{escape(offline)}[/]")
    if plan.targets:
        closure = "and what depends on them" if plan.mode == "destroy" else "and what they depend on"
        lines.append(f"[yellow]Targeted at: {escape(', '.join(plan.targets))}[/] ({closure})")
    lines.append("")
    shown = [c for c in plan.changes if c.action is not Action.NOOP or show_unchanged or plan.mode == "destroy"]
    for change in shown:
        lines.extend(_change_lines(change))
    lines += _section("Conflicts", "the plan cannot be applied until they are resolved",
                      [(c.address, c.message) for c in plan.conflicts])
    lines += _section("Blocked", "would delete what you have not agreed to lose",
                      [(b.address, f"{b.message}; {b.hint}") for b in plan.blocked])
    lines += _section("Would fail", "found before any write; nothing will be changed",
                      [(f"{p.address} ({p.field})", p.message) for p in plan.problems])
    if plan.unmanaged:
        lines.append("[bold]Not managed yet[/] (validated; saxctl will manage them once their provider lands):")
        width = max(len(u.address) for u in plan.unmanaged)
        for unmanaged in plan.unmanaged:
            lines.append(f"  [dim]?[/] {escape(unmanaged.address.ljust(width))}  [dim]from {escape(unmanaged.spec_field)}[/]")
        lines.append("")
    lines.append(summary_line(plan, offline=offline is not None))
    return "\n".join(lines)


def _section(title: str, why: str, items: list[tuple[str, str]]) -> list[str]:
    """What keeps a plan from being applied, one line per item; nothing when there is none."""
    if not items:
        return []
    return ([f"[bold red]{title}[/] ({why}):"]
            + [f"  [red]![/] [bold]{escape(address)}[/]: {escape(text)}" for address, text in items] + [""])


def _change_lines(change: Change) -> list[str]:
    symbol, colour = SYMBOL[change.action]
    lines = [f"  [{colour}]{escape(symbol)}[/] [bold]{escape(change.address)}[/] [{colour}]{change.action.value}[/]"
             f"  [dim]# {escape(change.reason)}[/]"]
    if change.hazard is not None:
        agreed = f" (agreed: {escape(change.hazard.approved_by)})" if change.hazard.approved_by else ""
        colour_of_hazard = "bold red" if change.hazard.needs_approval else "yellow"
        lines.append(f"      [{colour_of_hazard}]⚠ {escape(change.hazard.what)}[/]{agreed}")
    if change.action is Action.CREATE and change.after is not None:
        for key, value in sorted(change.after.items()):
            lines.append(f"      {escape(key)}: {escape(show_value(value))}")
    for field in change.field_changes:
        forced = " [magenta](forces replacement)[/]" if field.forces_replacement else ""
        lines.append(f"      {escape(field.path)}: {escape(show_value(field.before))} → "
                     f"{escape(show_value(field.after))}{forced}")
    lines.append("")
    return lines


def summary_line(plan: Plan, *, offline: bool = False) -> str:
    if not plan.applicable:
        reasons = [f"{len(plan.problems)} change(s) that would fail"] if plan.problems else []
        reasons += [f"{len(plan.conflicts)} conflict(s)"] if plan.conflicts else []
        reasons += [f"{len(plan.blocked)} change(s) that need your agreement"] if plan.blocked else []
        return f"[bold red]Plan blocked by {' and '.join(reasons)}.[/]"
    if not plan.has_changes:
        checked = len(plan.changes)
        world = "The world the earlier spec left" if offline else "The live state"
        return f"[green]No changes.[/] {world} matches the spec ({checked} resource(s) checked)."
    counts = ", ".join(f"{plan.count(action)} to {action.value}" for action in
                       (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE))
    return f"[bold]Plan:[/] {counts}, {plan.count(Action.NOOP)} unchanged."


def cost_markup(cost: Estimate) -> str:
    """The monthly cost the plan changes, one line per priced thing; nothing when it changes no cost."""
    if not cost.lines and not cost.usage_based:
        return ""
    hours = cost.prices.hours_per_month
    total = usd_text(cost.monthly_delta, signed=True)
    lines = ["", f"[bold]Cost[/] ({escape(cost.prices.described)}): {total} per month"]
    for line in cost.lines:
        delta = line.monthly_delta(hours)
        priced = "[yellow]not in the price table: give it with --prices FILE[/]"
        if line.price is not None:
            priced = usd_text(delta, signed=True) + ("" if line.price.confirmed else " [yellow](unconfirmed price)[/]")
        lines.append(f"  {escape(line.what)}: {line.before:g} → {line.after:g}  {priced}")
    if cost.usage_based:
        lines.append(f"  buckets ({escape(', '.join(cost.usage_based))}): depends on usage")
    return "\n".join(lines)
