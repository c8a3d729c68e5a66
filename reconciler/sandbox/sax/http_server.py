"""The sax-http:v1.0.0 stand-in (the tutorial's HTTP server, ai-on-gke saxml-on-gke/httpserver/http_server.py at
10048202): `python -m reconciler.sandbox.sax.http_server`, port 8888, env SAX_ROOT, no authentication.

Routes, shapes and errors as that server's: GET / and /listcell, POST /publish, /unpublish and /generate, PUT
/update; a JSON body whose key count must be exact; replies are HTTP/1.0 with no Content-Type, the JSON indented by
4 and a newline; a failure is 400 {"Error": "<the Sax client's exception>"}; an unknown path is 400 {"message":
"Invalid Request"}; a body that is missing or not JSON crashes the handler (the connection closes unanswered).
Beside them, /_sandbox/ (health, faults, requests) as every sandbox emulator has.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer
from reconciler.sandbox.base.launch import start_logging
from reconciler.sandbox.sax import standin
from reconciler.sandbox.sax.cellfs import SaxFiles
from reconciler.sandbox.sax.client import SaxClient
from reconciler.sandbox.sax.periods import Periods

_ROUTES = {"GET": {"/", "/listcell"}, "POST": {"/publish", "/unpublish", "/generate"}, "PUT": {"/update"}}
_INVALID = {"message": "Invalid Request"}

log = logging.getLogger(__name__)


class SaxHttpHandler(EmulatorHandler):
    protocol_version = "HTTP/1.0"  # as http.server's default: one request per connection, no Content-Length
    server: "SaxHttpServer"

    def handle_api(self, method: str) -> None:
        if method not in _ROUTES:
            self.send_error(501, f"Unsupported method ({method!r})")
            return
        if self.path not in _ROUTES[method]:
            self._reply(400, _INVALID, indent=None)
            return
        if self.path == "/":
            self._reply(200, {"message": "HTTP Server for SAX Client"})
            return
        try:
            params = json.loads(self.rfile.read(int(self.headers["content-length"])).decode("utf-8"))
            getattr(self, f"_{self.path[1:]}")(params)
        except (TypeError, ValueError) as error:
            # Where the original handler raises (no body, not JSON, a body with no length): http.server logs it
            # and closes the connection, answering nothing.
            log.error("%s %s: %s: closing the connection unanswered", method, self.path, error)
            self.close_connection = True

    # --- the routes (each as the original's: a key count check, then the Sax client; any exception → 400) -------

    def _listcell(self, params) -> None:
        if len(params) != 1:
            self._error("Provide model for list cell")
            return
        self._answer(lambda: self._detail(params["model"]))

    def _publish(self, params) -> None:
        if len(params) != 4:
            self._error("Provide model, model path, checkpoint, and replica number for publish")
            return
        self._answer(lambda: self._change(self.server.sax.publish, params))

    def _update(self, params) -> None:
        if len(params) != 4:
            self._error("Provide model, model path, checkpoint, and replica number for update")
            return
        self._answer(lambda: self._change(self.server.sax.update, params))

    def _unpublish(self, params) -> None:
        if len(params) != 1:
            self._error("Provide model for unpublish")
            return

        def unpublish() -> dict:
            model = params["model"]
            self.server.sax.unpublish(model)
            return {"model": model}

        self._answer(unpublish)

    def _generate(self, params) -> None:
        if len(params) != 2:
            self._error("Provide model and query for generate")
            return

        def generate() -> dict:
            model, query = params["model"], params["query"]
            self.server.sax.list_detail(model)
            return {"generate_response": [list(candidate) for candidate in self.server.sax.generate(model, query)]}

        self._answer(generate)

    def _detail(self, model) -> dict:
        published = self.server.sax.list_detail(model)
        return {"model": model, "model_path": published.model.model_path,
                "checkpoint": published.model.checkpoint_path,
                "max_replicas": published.model.requested_num_replicas,
                "active_replicas": len(published.modelet_addresses)}

    @staticmethod
    def _change(call, params) -> dict:
        model, path, checkpoint = params["model"], params["model_path"], params["checkpoint"]
        replicas = int(params["replicas"])
        call(model, path, checkpoint, replicas)
        return {"model": model, "path": path, "checkpoint": checkpoint, "replicas": replicas}

    # --- replies -----------------------------------------------------------------------------------------------

    def _answer(self, produce) -> None:
        try:
            reply = produce()
        except Exception as error:  # noqa: BLE001 - the original answers every exception as 400 {"Error": str(e)}
            self._error(error)
            return
        self._reply(200, reply)

    def _error(self, error) -> None:
        self._reply(400, {"Error": str(error)})

    def _reply(self, status: int, payload: dict, indent: int | None = 4) -> None:
        self.send_response(status)
        self.end_headers()
        self.wfile.write(json.dumps(payload, indent=indent).encode("utf-8") + b"\n")


class SaxHttpServer(EmulatorServer):
    def __init__(self, address: tuple[str, int], sax: SaxClient):
        super().__init__(address, SaxHttpHandler, "sax-http")
        self.sax = sax


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="the image listens on 8888")
    args = parser.parse_args(argv)
    start_logging()
    sax_root = os.environ.get("SAX_ROOT", "")
    if not sax_root:
        raise SystemExit("sax http server: set SAX_ROOT (gs://ADMIN_BUCKET/sax-root)")
    server = SaxHttpServer((standin.pod_ip(), args.port),
                           SaxClient(SaxFiles(), sax_root, Periods.from_env().rpc_timeout_s))
    faults = os.environ.get(standin.FAULTS_ENV)
    if faults:
        server.faults.add(json.loads(faults))
    log.info("sax-http on http://%s:%d (SAX_ROOT %s)", standin.pod_ip(), args.port, sax_root)
    server.serve_forever()


if __name__ == "__main__":
    main()
