"""`saxctl checkpoint convert|verify`: argument parsing and progress display; the work is in the modules beside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import click

from reconciler.render.console import error_console, output_console

DEFAULT_VOCAB_SIZE = 50401  # saxml.server.pax.lm.params.gptj.GPTJ; kept here so --help needs no heavy import


class _RichBar:
    """The engine's Progress protocol over one rich bar counting bytes."""

    def __init__(self, bars, description: str):
        self._bars = bars
        self._description = description
        self._task = bars.add_task(description, total=None)

    def update(self, message: str) -> None:
        short = message.removeprefix("mdl_vars.params.lm.")
        self._bars.update(self._task, description=f"{self._description} {short}")

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        self._bars.update(self._task, completed=done, total=total)


@contextlib.contextmanager
def _progress_bars() -> Iterator[object]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=error_console().rich, transient=False,
    )
    with bars:
        yield bars


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
@click.option("--project", help="Google Cloud project for the storage client [default: $GOOGLE_CLOUD_PROJECT].")
def convert(source: Path, destination: str, vocab_size: int, workers: int, staging: Path | None,
            project: str | None) -> None:
    """Convert tensor by tensor (memory about twice the largest tensor), verify every array, markers last.

    \b
    A re-run skips arrays already converted and verified, and objects already uploaded with the same crc32c.
    """
    from reconciler.checkpoint.pipeline import convert_to

    client = _storage_client(project) if destination.startswith("gs://") else None
    with _progress_bars() as bars:
        result = convert_to(
            source, destination, vocab_size, storage_client=client, workers=workers, staging=staging,
            convert_progress=_RichBar(bars, "convert"),
            upload_progress=_RichBar(bars, "upload ") if client is not None else None,
        )
    out = output_console()
    converted = result.converted
    for note in converted.notes:
        error_console().print_markup(f"[yellow]Note:[/] {note}")
    out.print_plain(f"Converted {converted.written} arrays ({converted.skipped} already done) into {converted.root}")
    if result.uploaded is not None:
        uploaded = result.uploaded
        out.print_plain(
            f"Uploaded {uploaded.uploaded} objects ({uploaded.bytes_uploaded:,} bytes; "
            f"{uploaded.skipped} already there) "
            f"to {uploaded.url}"
        )


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
