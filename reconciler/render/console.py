"""The two output streams: results on stdout, errors and progress on stderr; colour only on a TTY."""

from __future__ import annotations

import functools
import os
import sys

from reconciler.errors import SaxctlError, SpecError


class SaxConsole:
    """Plain lines go straight to the stream; rich (40 ms to import) is loaded only for markup, tables and colour."""

    def __init__(self, stderr: bool):
        self._stderr = stderr

    @functools.cached_property
    def rich(self):
        from rich.console import Console

        console = Console(stderr=self._stderr, highlight=False, no_color="NO_COLOR" in os.environ, soft_wrap=True)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 200  # tables in pipes and logs: no folding at rich's default of 80
        return console

    @property
    def is_terminal(self) -> bool:
        return self.rich.is_terminal

    def print_plain(self, text: str) -> None:
        print(text, file=sys.stderr if self._stderr else sys.stdout, flush=True)

    def print_markup(self, markup: str) -> None:
        if self._styled:
            self.rich.print(markup)
        else:  # the same text rich would print (soft wrap: no folding), without importing its console
            from rich.markup import render

            self.print_plain(render(markup).plain)

    @functools.cached_property
    def _styled(self) -> bool:
        """Whether rich would style this stream, as its Console.is_terminal decides outside Jupyter and IDLE."""
        said = os.environ.get("TTY_COMPATIBLE", "")
        if said in ("0", "1"):
            return said == "1"
        if "FORCE_COLOR" in os.environ:
            return os.environ["FORCE_COLOR"] != ""
        try:
            return (sys.stderr if self._stderr else sys.stdout).isatty()
        except ValueError:  # a closed stream
            return False

    def print_error(self, error: SaxctlError) -> None:
        from rich.markup import escape

        if isinstance(error, SpecError):
            for problem in error.problems:
                self.print_plain(str(problem))
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
