"""Run the IAM emulator: the gRPC API on one port, the sandbox control endpoints (HTTP) on another."""

from __future__ import annotations

import argparse
import json
import logging
import urllib.request
from pathlib import Path

from reconciler.sandbox.base import launch
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
    parser.add_argument("--resourcemanager", default="",
                        help="the Resource Manager emulator's URL: told of deleted accounts, so that project policies "
                             "show their members as deleted")
    args = parser.parse_args(argv)
    launch.start_logging()
    emulator = build_emulator(AccountStore(args.store),
                              _deleted_account_notice(args.resourcemanager) if args.resourcemanager else None)
    if args.faults_json:
        emulator.faults.add(json.loads(args.faults_json))
    emulator.start(args.host, args.grpc_port, args.port)
    log.info("IAM emulator: gRPC on %s:%d, control on http://%s:%d (accounts in %s)", args.host, args.grpc_port,
             args.host, args.port, args.store)
    emulator.serve_forever()


def _deleted_account_notice(resourcemanager_url: str):
    def notify(account: dict) -> None:
        body = json.dumps({"email": account["email"], "unique_id": account["unique_id"]}).encode()
        request = urllib.request.Request(f"{resourcemanager_url}/_sandbox/deleted-account", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError as error:  # the delete stands; only the project policies keep the live name
            log.warning("could not tell the Resource Manager emulator that %s was deleted: %s", account["email"],
                        error)

    return notify


if __name__ == "__main__":
    main()
