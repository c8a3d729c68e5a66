"""Progress of an apply for people: a line per event on stderr, a reminder for long waits, then a summary."""

from __future__ import annotations

import threading
import time

from rich.markup import escape

from reconciler.engine.apply import ApplyResult
from reconciler.engine.resource import Action, Change
from reconciler.errors import RetryableError, SaxctlError
from reconciler.render.console import SaxConsole
from reconciler.units import bytes_text

VERB = {Action.CREATE: "Creating", Action.UPDATE: "Updating", Action.REPLACE: "Replacing", Action.DELETE: "Deleting"}
DONE = {Action.CREATE: "Created", Action.UPDATE: "Updated", Action.REPLACE: "Replaced", Action.DELETE: "Deleted"}
STILL_WORKING_EVERY = 10.0  # seconds between "still working" lines, as Terraform does
ADVANCE_EVERY = 2.0  # seconds between byte-progress lines for one change


class ConsoleReporter:
    def __init__(self, console: SaxConsole):
        self._console = console
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Change, float]] = {}
        self._last_advance: dict[str, float] = {}
        self._label: dict[str, str] = {}  # the last message of a change: what its byte counts are counts of
        self._transfer: dict[str, tuple[float, int, int | None]] = {}  # start time, done and total of that transfer
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="still-working", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()

    def _say(self, markup: str) -> None:
        with self._lock:
            self._console.print_markup(markup)

    def _tick(self) -> None:
        while not self._stop.wait(STILL_WORKING_EVERY):
            now = time.monotonic()
            for change, started in list(self._running.values()):
                self._say(f"[bold]{escape(change.address)}[/]: still {VERB[change.action].lower()}... "
                          f"[{now - started:.0f}s elapsed]")

    def started(self, change: Change) -> None:
        self._running[change.address] = (change, time.monotonic())
        self._say(f"[bold]{escape(change.address)}[/]: {VERB[change.action]}...")

    def message(self, change: Change, text: str) -> None:
        self._label[change.address] = text
        self._say(f"[bold]{escape(change.address)}[/]: [dim]{escape(text)}[/]")

    def advanced(self, change: Change, done: int, total: int | None, unit: str) -> None:
        now = time.monotonic()
        started, start_done, start_total = self._transfer.get(change.address, (now, done, total))
        if total != start_total or done < start_done:  # a new transfer (another phase): its own rate
            started, start_done = now, done
        self._transfer[change.address] = (started, start_done, total)
        if total is not None and done < total and now - self._last_advance.get(change.address, 0.0) < ADVANCE_EVERY:
            return
        self._last_advance[change.address] = now
        share = f" ({100 * done / total:.0f}%)" if total else ""
        amount = f"{bytes_text(done)}" + (f" of {bytes_text(total)}" if total else "") if unit == "B" else f"{done} {unit}"
        amount += share
        rate = (done - start_done) / (now - started) if now - started > 0.5 else 0.0
        if rate and unit == "B":
            amount += f", {bytes_text(rate)}/s"
        if rate and total and done < total:
            left = (total - done) / rate
            amount += f", {int(left // 60)}m{int(left % 60):02d}s left"
        label = self._label.get(change.address)
        self._say(f"[bold]{escape(change.address)}[/]: [dim]{escape(label) + ': ' if label else ''}{amount}[/]")

    def retrying(self, change: Change, attempt: int, error: RetryableError, delay: float) -> None:
        self._say(f"[bold]{escape(change.address)}[/]: [yellow]retrying in {delay:.1f}s[/] "
                  f"(attempt {attempt} failed: {escape(error.message)})")

    def finished(self, change: Change, seconds: float) -> None:
        self._running.pop(change.address, None)
        self._say(f"[bold]{escape(change.address)}[/]: [green]{DONE[change.action]}[/] after {seconds:.1f}s")

    def failed(self, change: Change, error: SaxctlError, seconds: float) -> None:
        self._running.pop(change.address, None)
        self._say(f"[bold]{escape(change.address)}[/]: [bold red]failed[/] after {seconds:.1f}s: {escape(error.message)}")
        if error.hint:
            self._say(f"  [dim]{escape(error.hint)}[/]")

    def skipped(self, change: Change, reason: str) -> None:
        self._say(f"[bold]{escape(change.address)}[/]: [yellow]skipped[/] ({escape(reason)})")

    def stopping(self, running, leaving: bool) -> None:
        if leaving:
            self._say("[bold yellow]Leaving now.[/] What was under way goes on remotely; the next apply finds it "
                      "and resumes.")
        else:
            self._say("[bold yellow]Interrupted:[/] no new change will start. Waiting for those under way "
                      "(press Ctrl-C again to leave at once):")
        for change, operation in running:
            remote = f" — {escape(operation)} runs remotely" if operation else ""
            self._say(f"  [bold]{escape(change.address)}[/]: {VERB[change.action].lower()}{remote}")


def result_markup(result: ApplyResult, seconds: float, mode: str = "apply") -> str:
    by_action = {}
    for outcome in result.outcomes:
        if outcome.status == "done":
            by_action[outcome.change.action] = by_action.get(outcome.change.action, 0) + 1
    counts = ", ".join(f"{by_action.get(a, 0)} {DONE[a].lower()}" for a in VERB
                       if mode != "destroy" or a is Action.DELETE)
    word = "Destroy" if mode == "destroy" else "Apply"
    if result.ok:
        return f"[bold green]{word} complete![/] {counts} in {seconds:.1f}s."
    failed, skipped = result.count("failed"), result.count("skipped") + result.count("abandoned")
    head = f"[bold yellow]{word} interrupted.[/]" if result.interrupted else f"[bold red]{word} failed.[/]"
    again = "saxctl destroy" if mode == "destroy" else "saxctl apply"
    return (f"{head} {counts}; {failed} failed, {skipped} not done, in {seconds:.1f}s. "
            f"Run `saxctl plan` to see what is left: running `{again}` again resumes from the live state.")
