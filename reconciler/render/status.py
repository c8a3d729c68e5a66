"""The state of every resource of a spec at a glance: in sync, drifted, missing, conflicting or not managed yet."""

from __future__ import annotations

from typing import Sequence

from rich.markup import escape
from rich.table import Table

from reconciler.engine.plan import Plan
from reconciler.engine.provider import Detail
from reconciler.engine.resource import Action, Change


def status_table(plan: Plan, details: Sequence[Detail] = ()) -> Table:
    """One row per object: its state against the spec and, where its provider says, what it holds now (nodes, ready
    replicas, models loaded); objects of the spec's kinds that no saxctl spec owns are listed last, as foreign."""
    table = Table(title=f"spec {plan.spec.name} ({plan.spec.file})", title_justify="left", box=None,
                  header_style="bold", pad_edge=False)
    table.add_column("ADDRESS", no_wrap=True)
    table.add_column("OBJECT", overflow="fold")
    table.add_column("STATE", overflow="fold")
    table.add_column("NOW", overflow="fold")
    blocked = {item.address: item for item in plan.blocked}
    now = {detail.address: detail.text for detail in details if not detail.foreign}
    short = {detail.address for detail in details if detail.falls_short and not detail.foreign}
    for change in plan.changes:
        state = _state(change)
        if change.address in short:
            state += "; [yellow]not all serving[/]"
        if change.address in blocked:
            state += f"; [red]blocked[/]: {escape(blocked[change.address].hint)}"
        table.add_row(escape(change.address), escape(_object(change)), state, escape(now.get(change.address, "")))
    for conflict in plan.conflicts:
        table.add_row(escape(conflict.address), escape(conflict.remote_id),
                      f"[red]conflict[/]: {escape(conflict.message)}", "")
    for unmanaged in plan.unmanaged:
        table.add_row(escape(unmanaged.address), "-", "[dim]not managed yet[/]", "")
    for detail in details:
        if detail.foreign:
            table.add_row("-", escape(detail.address), "[cyan]foreign[/]", escape(detail.text))
    return table


def _object(change: Change) -> str:
    """The remote id the provider reports, so an object reads the same whether it exists yet or not."""
    if change.observed is not None:
        return change.observed.remote_id
    if change.desired is not None:
        return change.desired.shown_id
    return "-"


def _state(change: Change) -> str:
    fields = ", ".join(field.path for field in change.field_changes)
    if change.action is Action.NOOP:
        return "[green]in sync[/]"
    if change.action is Action.CREATE:
        return "[yellow]incomplete[/]" if change.observed is not None else "[yellow]missing[/]"
    if change.action is Action.UPDATE:
        return f"[yellow]drifted[/]: {escape(fields)}" if fields else f"[yellow]{escape(change.reason)}[/]"
    if change.action is Action.REPLACE:
        return f"[magenta]must be replaced[/]: {escape(fields)}"
    if change.pruned:
        return "[red]no longer in the spec[/]: will be deleted"
    return f"[red]to delete[/]: {escape(change.reason)}"
