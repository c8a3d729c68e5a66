"""The sax-model-server stand-in: `python -m reconciler.sandbox.sax.model_server`, with the image's flags and env.

It serves `sax.Modelet` (Load, Unload, GetStatus) and `sax.server.lm.LMService` (Generate, Score) as Sax's
model_service_base.py does: one load or unload at a time, a failed load stays FAILED with its reason, a call to a
model not loaded is NOT_FOUND "... still loading or already unloaded". The language model is
reconciler.sandbox.sax.lm (JAX, on CPU), run with as many devices as XLA_FLAGS gives (the pod's TPU chips): the
server advertises the params classes that device count can serve, and joins the admin it finds in location.proto.

Sandbox knobs: fault rules with method "LOAD" and a path matching the model key (e.g. "/sax/test/gptj") make a
load slow (`delay_s`) or fail (`grpc_code`, reason from `body.error.message`); POST /_sandbox/exit ends the process
at once, as a crash would.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import threading
import time

from reconciler.sandbox.base.grpc_errors import GrpcApiError
from reconciler.sandbox.base.grpcbase import ControlHandler, GrpcEmulator
from reconciler.sandbox.base.launch import start_logging
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.sax import standin
from reconciler.sandbox.sax.cellfs import SaxFiles, cell_dir
from reconciler.sandbox.sax.joiner import Joiner
from reconciler.sandbox.sax.naming import SaxError, cell_name, go_quote
from reconciler.sandbox.sax.periods import Periods
from reconciler.saxproto import admin_pb2, common_pb2, lm_pb2, modelet_pb2

LM_MODULE_ENV = "SAXCTL_SANDBOX_LM"  # tests only: a module with lm's interface instead of the real model
_LM_MODULE = "reconciler.sandbox.sax.lm"
_LOAD_FAULT = "LOAD"  # the fault-rule method that the model server's loads match

# saxml server/proto_util.py: chip and topology flag values; anything else is UNKNOWN.
CHIPS = {"tpuv2": "CHIP_TYPE_TPU_V2", "tpuv3": "CHIP_TYPE_TPU_V3", "tpuv4": "CHIP_TYPE_TPU_V4",
         "tpuv4i": "CHIP_TYPE_TPU_V4I", "tpuv5e": "CHIP_TYPE_TPU_V5E", "p100": "CHIP_TYPE_GPU_P100",
         "v100": "CHIP_TYPE_GPU_V100", "t4": "CHIP_TYPE_GPU_T4", "l4": "CHIP_TYPE_GPU_L4", "a100": "CHIP_TYPE_GPU_A100",
         "cpu": "CHIP_TYPE_CPU", "h100": "CHIP_TYPE_GPU_H100"}

log = logging.getLogger(__name__)


def chip_type(flag: str | None) -> int:
    return admin_pb2.ModelServer.ChipType.Value(CHIPS.get((flag or "").lower(), "CHIP_TYPE_UNKNOWN"))


def chip_topology(flag: str | None) -> int:
    topology = (flag or "").removesuffix("_twisted").removesuffix("_untwisted")
    name = f"CHIP_TOPOLOGY_{topology.upper()}"
    values = admin_pb2.ModelServer.ChipTopology
    return values.Value(name) if topology and name in values.keys() else values.CHIP_TOPOLOGY_UNKNOWN


class GcsCheckpoint:
    """lm's CheckpointReader over the published checkpoint_path (gs://BUCKET/PATH)."""

    def __init__(self, files: SaxFiles, checkpoint_path: str):
        self._files = files
        self._root = checkpoint_path.rstrip("/")

    def read(self, relative_path: str) -> bytes:
        url = f"{self._root}/{relative_path}"
        data = self._files.read(url)
        if data is None:
            raise FileNotFoundError(f"{url}: no such object")
        return data


class Models:
    """The models of this server: their status, failure reasons, and the loaded ones."""

    def __init__(self, lm, device_count: int, files: SaxFiles, faults):
        self._lm = lm
        self._device_count = device_count
        self._files = files
        self._faults = faults
        self._lock = threading.Lock()  # guards the maps
        self._one_at_a_time = threading.Lock()  # Sax runs loads and unloads one after another
        self._status: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._loaded: dict[str, object] = {}
        self._busy: dict[str, threading.Lock] = {}  # one request at a time per model (Sax batches them)

    def methods(self) -> tuple[dict, dict]:
        method = standin.sax_method
        modelet = {"Load": method(self.load, modelet_pb2.LoadRequest, read=False),
                   "Unload": method(self.unload, modelet_pb2.UnloadRequest, read=False),
                   "GetStatus": method(self.get_status, modelet_pb2.GetStatusRequest, read=True)}
        lm_service = {"Generate": method(self.generate, lm_pb2.GenerateRequest, read=True),
                      "Score": method(self.score, lm_pb2.ScoreRequest, read=True)}
        return modelet, lm_service

    # --- sax.Modelet -------------------------------------------------------------------------------------------

    def load(self, request: modelet_pb2.LoadRequest) -> modelet_pb2.LoadResponse:
        key = request.model_key
        with self._one_at_a_time:
            with self._lock:
                if key in self._loaded:
                    raise GrpcApiError("INVALID_ARGUMENT", f"Model {key} is already loaded, cannot load.")
                self._status[key] = common_pb2.LOADING
                self._errors.pop(key, None)
            log.info("Loading model for key: %s (%s from %s)", key, request.model_path, request.checkpoint_path)
            try:
                model = self._load(request)
            except Exception as error:  # any failure is the load's: FAILED, with the reason GetStatus shows
                log.exception("Error loading model %s", key)
                with self._lock:
                    self._status[key] = common_pb2.FAILED
                    self._errors[key] = str(error)
                if isinstance(error, ValueError):
                    raise GrpcApiError("INVALID_ARGUMENT", str(error)) from None
                raise GrpcApiError("INTERNAL", f"Loading error: {error}") from None
            with self._lock:
                self._loaded[key] = model
                self._busy[key] = threading.Lock()
                self._status[key] = common_pb2.LOADED
            log.info("Loaded model %s", key)
        return modelet_pb2.LoadResponse()

    def _load(self, request: modelet_pb2.LoadRequest):
        rule = self._faults.match(_LOAD_FAULT, request.model_key)
        if rule is not None and rule.delay_s:
            time.sleep(rule.delay_s)  # the knob's latency: a slow load, seen as LOADING meanwhile
        if rule is not None and rule.fails:
            raise RuntimeError((rule.body or {}).get("error", {}).get("message") or "injected load failure")
        if not request.checkpoint_path.startswith("gs://"):
            raise ValueError(f"checkpoint path {request.checkpoint_path!r} is not on GCS (gs://BUCKET/PATH)")
        return self._lm.load(request.model_path, GcsCheckpoint(self._files, request.checkpoint_path),
                             self._device_count)

    def unload(self, request: modelet_pb2.UnloadRequest) -> modelet_pb2.UnloadResponse:
        key = request.model_key
        if not key:
            raise GrpcApiError("INVALID_ARGUMENT", "model_key is not specified.")
        with self._lock:
            if key not in self._status:
                raise GrpcApiError("INVALID_ARGUMENT", f"{key} not found, cannot unload.")
        with self._one_at_a_time:
            with self._lock:
                self._loaded.pop(key, None)
                self._busy.pop(key, None)
                self._status.pop(key, None)
                self._errors.pop(key, None)
        log.info("Unloaded model %s", key)
        return modelet_pb2.UnloadResponse()

    def get_status(self, request: modelet_pb2.GetStatusRequest) -> modelet_pb2.GetStatusResponse:
        reply = modelet_pb2.GetStatusResponse()
        with self._lock:
            for key, status in self._status.items():
                model = reply.models.add(model_key=key, model_status=status)
                if status == common_pb2.FAILED and request.include_failure_reasons:
                    model.failure_reason = self._errors.get(key, "")
        return reply

    # --- sax.server.lm.LMService -------------------------------------------------------------------------------

    def generate(self, request: lm_pb2.GenerateRequest) -> lm_pb2.GenerateResponse:
        model, busy = self._serving(request.model_key)
        with busy:
            candidates = model.generate(request.text)
        return lm_pb2.GenerateResponse(texts=[lm_pb2.DecodedText(text=text, score=score) for text, score in candidates])

    def score(self, request: lm_pb2.ScoreRequest) -> lm_pb2.ScoreResponse:
        model, busy = self._serving(request.model_key)
        with busy:
            return lm_pb2.ScoreResponse(logp=[model.score(request.prefix, suffix) for suffix in request.suffix])

    def _serving(self, key: str):
        with self._lock:
            if key not in self._loaded:
                raise GrpcApiError("NOT_FOUND", f"{key} is still loading or already unloaded")
            return self._loaded[key], self._busy[key]


class _ModelServerControl(ControlHandler):
    controls = RouteTable((route("POST", "exit", "_control_exit"),))

    def _control_exit(self, query: dict) -> None:
        log.warning("Exiting at the sandbox's request (a crash, as far as anyone can tell)")
        os._exit(1)


class _ModelServerEmulator(GrpcEmulator):
    control_handler = _ModelServerControl


def language_model():
    """The lm module: reconciler.sandbox.sax.lm, or the test double SAXCTL_SANDBOX_LM names."""
    return importlib.import_module(os.environ.get(LM_MODULE_ENV) or _LM_MODULE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sax_cell", default=None)
    parser.add_argument("--platform_chip", default=None)
    parser.add_argument("--platform_topology", default=None)
    parser.add_argument("--jax_platforms", default=None, help="accepted and ignored: the stand-in runs JAX on CPU")
    parser.add_argument("--alsologtostderr", action="store_true", help="accepted: the log goes to stderr")
    args = parser.parse_args(argv)
    start_logging()
    os.environ["JAX_PLATFORMS"] = "cpu"  # the pod asks for TPUs; here XLA_FLAGS gives as many CPU devices
    import jax

    device_count = jax.device_count()
    lm = language_model()
    servable = list(lm.servable_model_paths(device_count))
    log.info("%d JAX device(s): servable model paths %s", device_count, servable)

    files = SaxFiles()
    periods = Periods.from_env()
    sax_root = os.environ.get("SAX_ROOT", "")
    if args.sax_cell is not None:
        try:
            cell_name(args.sax_cell)
        except SaxError as error:
            raise SystemExit(f"sax model server: invalid --sax_cell: {error}") from None
        if not sax_root:
            raise SystemExit("sax model server: neither the sax_root flag nor the SAX_ROOT environment variable "
                             "is set")
        cell = cell_dir(sax_root, args.sax_cell)
        if not files.dir_exists(cell):  # Sax's location.Join raises and the server exits
            missing = SaxError(f"{go_quote(cell)} is not a directory", "FAILED_PRECONDITION")
            raise SystemExit(f"sax model server: location.Join failed: {missing}")

    emulator = _ModelServerEmulator("sax-model-server", "sax.Modelet")
    models = Models(lm, device_count, files, emulator.faults)
    modelet_methods, lm_methods = models.methods()
    emulator.add_service("sax.Modelet", modelet_methods)
    emulator.add_service("sax.server.lm.LMService", lm_methods)
    address = standin.start(emulator, args.port)
    if args.sax_cell is not None:
        specs = admin_pb2.ModelServer(chip_type=chip_type(args.platform_chip),
                                      chip_topology=chip_topology(args.platform_topology),
                                      servable_model_paths=servable)
        Joiner(files, sax_root, args.sax_cell, address, specs, periods).start()
    emulator.serve_forever()


if __name__ == "__main__":
    main()
