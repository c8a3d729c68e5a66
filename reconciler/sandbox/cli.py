"""`saxctl sandbox up|down|status|env`: local emulators that the real clients reach through exported endpoints."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from reconciler.errors import SaxctlError
from reconciler.render.console import error_console, output_console


@click.group()
def sandbox() -> None:
    """Start, stop and point at the local emulators.

    \b
    eval "$(saxctl sandbox up)"     # start (building emulators on first run) and point this shell at them
    saxctl sandbox status           # each emulator: pid, port, health, log
    eval "$(saxctl sandbox env --unset)"; saxctl sandbox down   # back to real Google Cloud

    Nothing targets the sandbox implicitly: without the exports saxctl talks to real Google Cloud.
    """


@sandbox.command()
@click.option("--faults", "faults_path", type=click.Path(dir_okay=False, exists=True),
              envvar="SAXCTL_SANDBOX_FAULTS",
              help='JSON file of fault rules per emulator installed at start, e.g. {"gcs": [{"method": "PUT", '
                   '"path": "^/upload/", "status": 503, "count": 2}]}; also settable later through '
                   "POST /_sandbox/faults on the emulator. For iam (gRPC) the path is the method's, e.g. "
                   '"CreateServiceAccount$", and grpc_code, after_commit and seed apply. '
                   "Default: $SAXCTL_SANDBOX_FAULTS.")
def up(faults_path: str | None) -> None:
    """Start the emulators (idempotent) and print the shell exports of `saxctl sandbox env`.

    Already up: says so, adds the --faults rules to the running emulators, and prints the same exports.
    """
    from reconciler.sandbox import paths, supervisor

    say = error_console().print_plain
    state, already_up = supervisor.up(say, _read_faults(faults_path) if faults_path else None)
    if already_up:
        say(f"sandbox already up since {state['started']}, {supervisor.whose(state)}; state in {paths.state_dir()}")
    else:
        say(f"sandbox up in {state['start_seconds']:.1f} s, {supervisor.whose(state)}; state in {paths.state_dir()}")
    output_console().rich.out(supervisor.shell_exports(supervisor.env_exports(state)), end="", highlight=False)


@sandbox.command()
@click.option("--purge", is_flag=True, help="Also delete the stored buckets, objects, logs and sample checkpoint.")
@click.option("--force", is_flag=True, help="Stop it even if another checkout (or user) started it.")
def down(purge: bool, force: bool) -> None:
    """Stop the emulators (SIGTERM, then SIGKILL after a timeout).

    Refuses a sandbox that another checkout started (e.g. one this shell was pointed at), unless --force.
    """
    from reconciler.sandbox import supervisor

    was_up = supervisor.down(error_console().print_plain, purge=purge, force=force)
    what = "stopped" if was_up else "was not running"
    error_console().print_plain(f"sandbox {what}{'; stored data deleted' if purge else ''}.")


@sandbox.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> None:
    """Whose sandbox it is, then each emulator with its pid, port(s), health and log. Exits 1 unless fully up.

    The port is the one its /_sandbox/ control endpoints answer on; extra ports follow by name ("grpc 41235").
    """
    from reconciler.sandbox import paths, supervisor

    state = supervisor.read_state()
    if state is not None:
        error_console().print_plain(f"sandbox in {paths.state_dir()}, up since {state['started']}, "
                                    f"{supervisor.whose(state)}")
    rows = supervisor.status()
    healthy = all(row.healthy for row in rows)
    if as_json:
        output_console().rich.out(json.dumps([dataclasses.asdict(row) for row in rows], indent=2), highlight=False)
    else:
        from rich.table import Table

        table = Table("emulator", "pid", "port", "health", box=None, pad_edge=False)
        table.add_column("log", overflow="fold")  # a path cut short is no use
        for row in rows:
            health = "[green]healthy[/]" if row.healthy else f"[red]down[/] ({row.detail})"
            ports = " ".join([str(row.port or "-"), *(f"{name} {port}" for name, port in row.ports.items())])
            table.add_row(row.name, str(row.pid or "-"), ports, health, row.log)
        output_console().rich.print(table)
        if any(row.name == "kube-apiserver" and row.healthy for row in rows):
            from reconciler.sandbox import paths
            from reconciler.sandbox.kube import files

            kubectl = paths.bin_dir() / "kubectl"  # the one built with the apiserver, same version
            output_console().rich.out(f"kubeconfig: {files.kubeconfig()}  (e.g. {kubectl} --kubeconfig "
                                      f"{files.kubeconfig()} get nodes)", highlight=False)
    if not healthy:
        error_console().print_plain('sandbox is not up; start it with: eval "$(saxctl sandbox up)"')
        sys.exit(1)


@sandbox.command()
@click.option("--unset", is_flag=True, help="Print `unset` lines that undo the exports.")
def env(unset: bool) -> None:
    """Print shell exports pointing clients at the running sandbox: eval "$(saxctl sandbox env)"."""
    from reconciler.sandbox import supervisor

    if unset:
        output_console().rich.out(supervisor.unset_lines(), end="", highlight=False)
        return
    output_console().rich.out(supervisor.shell_exports(supervisor.env_exports()), end="", highlight=False)


@sandbox.command("sample-checkpoint")
@click.argument("directory", type=click.Path(file_okay=False), required=False)
@click.option("--seed", default=0, show_default=True, help="Random seed of the weights.")
def sample_checkpoint(directory: str | None, seed: int) -> None:
    """Write a small random GPT-J (Hugging Face layout) into DIRECTORY, to try checkpoints: locally.

    \b
    The sandbox has no model hub, so the demo converts and uploads this instead of GPT-J 6B. Without DIRECTORY it
    goes into the sandbox's state, and `saxctl sandbox env` then exports GPTJ_CHECKPOINT (the source of
    specs/gptj-v5e-2x2.yaml) pointing at it, unless you set GPTJ_CHECKPOINT yourself:
      saxctl sandbox sample-checkpoint && eval "$(saxctl sandbox env)"
      saxctl apply specs/gptj-v5e-2x2.yaml
    """
    from reconciler.sandbox import paths
    from reconciler.sandbox.sample_checkpoint import write_sample_gptj

    written = write_sample_gptj(Path(directory) if directory else paths.sample_checkpoint_dir(), seed)
    error_console().print_plain(f"wrote a random GPT-J sample to {written}")


def _read_faults(faults_path: str) -> dict[str, list]:
    try:
        with open(faults_path) as handle:
            faults = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise SaxctlError(f"cannot read fault rules from {faults_path}: {error}") from None
    if not isinstance(faults, dict) or not all(isinstance(rules, list) for rules in faults.values()):
        raise SaxctlError(f"{faults_path}: fault rules must be a JSON object of emulator name → list of rules")
    return faults
