"""Stop a sandbox once the process that owns it is gone (a test session killed before its teardown)."""

from __future__ import annotations

import argparse
import os
import time

from reconciler.processes import process_alive

_POLL_S = 1.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--owner", type=int, required=True, help="pid whose exit stops the sandbox")
    parser.add_argument("--state-dir", required=True, help="the sandbox's SAXCTL_SANDBOX_DIR")
    args = parser.parse_args(argv)
    while process_alive(args.owner):
        time.sleep(_POLL_S)
    os.environ["SAXCTL_SANDBOX_DIR"] = args.state_dir
    from reconciler.sandbox import supervisor

    supervisor.down(lambda message: print(message, flush=True))


if __name__ == "__main__":
    main()
