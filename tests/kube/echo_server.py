"""The pod runner's test image (`sandbox-test-echo`): an HTTP server on the pod's IP that answers what it was started
with — its pid, command line, environment and address — and says on stdout and stderr that it listens."""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--greeting", default="")
    parser.add_argument("--exit-code", type=int, help="exit at once with this code (a container that crashes)")
    args, _ = parser.parse_known_args()
    if args.exit_code is not None:
        print(f"exiting with code {args.exit_code}", flush=True)
        sys.exit(args.exit_code)
    address = (os.environ.get("SAXCTL_SANDBOX_POD_IP", "127.0.0.1"), args.port)
    answer = json.dumps({"pid": os.getpid(), "argv": sys.argv[1:], "env": dict(os.environ),
                         "address": list(address)}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            print(f"served {self.path}", flush=True)

    server = HTTPServer(address, Handler)
    print(f"{args.greeting} listening on {address[0]}:{address[1]} as pid {os.getpid()}", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
