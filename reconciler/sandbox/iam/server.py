"""Run the IAM emulator: the gRPC API on one port, the sandbox control endpoints (HTTP) on another."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from reconciler.sandbox.iam.service import build_emulator
from reconciler.sandbox.iam.store import AccountStore

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the control port: /_sandbox/health, faults, requests")
    parser.add_argument("--grpc-port", type=int, required=True, help="the API: google.iam.admin.v1.IAM, insecure")
    parser.add_argument("--store", type=Path, required=True, help="JSON file holding the accounts and policies")
    parser.add_argument("--faults-json", default="", help="fault rules to install at start (a JSON list)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    emulator = build_emulator(AccountStore(args.store))
    if args.faults_json:
        emulator.faults.add(json.loads(args.faults_json))
    emulator.start(args.host, args.grpc_port, args.port)
    log.info("IAM emulator: gRPC on %s:%d, control on http://%s:%d (accounts in %s)", args.host, args.grpc_port,
             args.host, args.port, args.store)
    emulator.serve_forever()


if __name__ == "__main__":
    main()
