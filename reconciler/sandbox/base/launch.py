"""The command line every Python emulator shares: where to listen, fault rules to start with, logging, serving."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import signal
import sys

from reconciler.sandbox.base.httpbase import EmulatorServer

log = logging.getLogger(__name__)


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults-json", default="", help="fault rules to install at start (a JSON list)")
    return parser


def start_logging() -> None:
    """INFO and above to stderr (the emulator's log file); SIGUSR1 writes every thread's stack there, so that an
    emulator gone silent can be asked where it waits (`kill -USR1 PID`) without stopping it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def serve(server: EmulatorServer, args: argparse.Namespace, what: str) -> None:
    """Install the start-up fault rules, say where the emulator listens, and serve until shut down."""
    if args.faults_json:
        server.faults.add(json.loads(args.faults_json))
    log.info("%s on http://%s:%d", what, args.host, args.port)
    server.serve_forever()
