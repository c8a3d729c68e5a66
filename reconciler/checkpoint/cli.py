"""`saxctl checkpoint convert|verify`: argument parsing and progress display; the work is in the modules beside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import click

from reconciler.render.console import error_console, output_console

DEFAULT_VOCAB_SIZE = 50401  # saxml.server.pax.lm.params.gptj.GPTJ; kept here so --help needs no heavy import


class _TransferDisplay:
    """The engine's Progress protocol as one rich line: the phase (hashing, converting, uploading), bytes in
    binary units, rate and time left. A new phase restarts the line's clock, so each rate is its own."""

    def __init__(self, bars):
        self._bars = bars
        self._task = bars.add_task("starting", total=None)
        self._phase = "starting"

    def update(self, message: str) -> None:
        if message != self._phase:
            self._phase = message
            self._bars.reset(self._task, total=None, description=message)

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        self._bars.update(self._task, completed=done, total=total)


@contextlib.contextmanager
def _transfer_display() -> Iterator[_TransferDisplay]:
    from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class BinaryRateColumn(ProgressColumn):
        """MiB/s, in the same binary units as the amounts (rich's own speed column is decimal)."""

        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed / (1 << 20):.0f} MiB/s" if speed else "", style="progress.data.speed")

    bars = Progress(
        TextColumn("{task.description:<18}"), BarColumn(), DownloadColumn(binary_units=True), BinaryRateColumn(),
        TimeRemainingColumn(), console=error_console().rich, transient=False,
    )
    with bars:
        yield _TransferDisplay(bars)


def _storage_client(project: str | None):
    from reconciler.providers.gcs.client import storage_client

    return storage_client(project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "saxctl-local")


@click.group()
def checkpoint() -> None:
    """Convert Hugging Face GPT-J checkpoints to the Pax layout Sax loads, and upload them."""


@checkpoint.command()
@click.option("--from", "source", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Hugging Face GPT-J directory: config.json and .bin shards (+ index) or safetensors.")
@click.option("--to", "destination", required=True,
              help="A local directory, or gs://BUCKET/.../checkpoint_00000000 (staged locally, then uploaded).")
@click.option("--vocab-size", default=DEFAULT_VOCAB_SIZE, show_default=True,
              help="Rows the target params expect; a smaller source vocabulary is padded with zeros.")
@click.option("--workers", default=8, show_default=True, help="Parallel uploads.")
@click.option("--staging", type=click.Path(file_okay=False, path_type=Path),
              help="Local copy for a gs:// destination [default: ~/.cache/saxctl/staging/...].")
@click.option("--keep-staging", is_flag=True, help="Keep the local copy after a verified upload to gs://.")
@click.option("--project", help="Google Cloud project for the storage client [default: $GOOGLE_CLOUD_PROJECT].")
def convert(source: Path, destination: str, vocab_size: int, workers: int, staging: Path | None,
            keep_staging: bool, project: str | None) -> None:
    """Convert tensor by tensor (memory: a few blocks of 64 MB), verify every array, markers last.

    \b
    A re-run skips arrays already converted and verified, objects already uploaded with the same crc32c, and
    continues a large object that a killed run had half sent.
    """
    from reconciler.checkpoint import pipeline

    client = _storage_client(project) if destination.startswith("gs://") else None
    planned = pipeline.prepare(source, destination, vocab_size, storage_client=client, staging=staging)
    err = error_console()
    if planned.staging is not None:
        err.print_plain(f"Staging the converted checkpoint in {planned.staging} "
                        f"({planned.conversion.nbytes / (1 << 30):.1f} GiB; "
                        + ("kept" if keep_staging else "removed after a verified upload") + ")")
    with _transfer_display() as display:
        result = pipeline.run(planned, display, workers=workers, keep_staging=keep_staging)
    out = output_console()
    converted = result.converted
    for note in converted.notes:
        err.print_markup(f"[yellow]Note:[/] {note}")
    out.print_plain(f"Converted {converted.written} arrays ({converted.skipped} already done) into {converted.root}")
    if result.uploaded is not None:
        uploaded = result.uploaded
        out.print_plain(
            f"Uploaded {uploaded.uploaded} objects ({uploaded.bytes_uploaded / (1 << 20):,.1f} MiB sent; "
            f"{uploaded.skipped} already there) to {uploaded.url}"
        )
        out.print_plain("Removed the staging copy." if result.staging_removed
                        else f"Kept the staging copy at {converted.root}.")


@checkpoint.command()
@click.argument("location")
@click.option("--project", help="Google Cloud project for the storage client [default: $GOOGLE_CLOUD_PROJECT].")
def verify(location: str, project: str | None) -> None:
    """Check a converted checkpoint against its manifest: every array re-read locally, every crc32c in GCS."""
    from reconciler.checkpoint.verify import verify_local, verify_remote

    if location.startswith("gs://"):
        result = verify_remote(_storage_client(project), location)
    else:
        result = verify_local(Path(location))
    output_console().print_plain(
        f"OK: {result.location}: {result.arrays} arrays, {result.files} files match the manifest "
        f"(source {result.source_fingerprint})"
    )
