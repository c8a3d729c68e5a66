"""The two output streams: results on stdout, errors and progress on stderr; colour only on a TTY."""

from __future__ import annotations

import functools
import os

from rich.console import Console
from rich.markup import escape

from reconciler.errors import SaxctlError, SpecError


class SaxConsole:
    def __init__(self, stderr: bool):
        no_color = "NO_COLOR" in os.environ
        self.rich = Console(stderr=stderr, highlight=False, no_color=no_color, soft_wrap=True)
        if not self.rich.is_terminal and "COLUMNS" not in os.environ:
            self.rich.width = 200  # tables in pipes and logs: no folding at rich's default of 80

    @property
    def is_terminal(self) -> bool:
        return self.rich.is_terminal

    def print_plain(self, text: str) -> None:
        self.rich.print(escape(text))

    def print_markup(self, markup: str) -> None:
        self.rich.print(markup)

    def print_error(self, error: SaxctlError) -> None:
        if isinstance(error, SpecError):
            for problem in error.problems:
                self.rich.print(escape(str(problem)))
            files = len({problem.file for problem in error.problems})
            self.rich.print(f"[bold red]Error:[/] invalid spec: {len(error.problems)} problem(s) in {files} file(s)")
            return
        self.rich.print(f"[bold red]Error:[/] {escape(error.message)}")
        if error.hint:
            self.rich.print(f"[dim]{escape(error.hint)}[/]")


@functools.cache
def output_console() -> SaxConsole:
    return SaxConsole(stderr=False)


@functools.cache
def error_console() -> SaxConsole:
    return SaxConsole(stderr=True)
