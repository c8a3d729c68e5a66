"""A Sax client as the tutorial's HTTP server uses one (saxml's Python client over its Go client): the model id
names the cell, location.proto (read afresh each time) names the admin, the admin's List names the model's servers.

Errors read as that client's exceptions do: absl's "CODE: message", where an RPC error's message is grpc-go's
"rpc error: code = Unknown desc = <the server's text>".
"""

from __future__ import annotations

import time

import grpc

from reconciler.sandbox.sax.cellfs import SaxFiles, cell_dir
from reconciler.sandbox.sax.naming import SaxError, go_quote, go_status_text, model_name
from reconciler.saxproto import admin_pb2, admin_pb2_grpc, lm_pb2, lm_pb2_grpc

_ADMIN_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)  # Sax's AdminShouldRetry
_SERVER_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   grpc.StatusCode.NOT_FOUND)  # ServerShouldRetry: another server may have the model


class SaxClientError(Exception):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


class SaxClient:
    def __init__(self, files: SaxFiles, sax_root: str, retry_s: float):
        self._files = files
        self._root = sax_root
        self._retry_s = retry_s  # how long an unreachable admin or a model with no server ready is retried

    def publish(self, model_id: str, model_path: str, checkpoint: str, replicas: int) -> None:
        model = admin_pb2.Model(model_id=model_id, model_path=model_path, checkpoint_path=checkpoint,
                                requested_num_replicas=replicas)
        self._admin_call(model_id, "Publish", admin_pb2.PublishRequest(model=model))

    def update(self, model_id: str, model_path: str, checkpoint: str, replicas: int) -> None:
        model = admin_pb2.Model(model_id=model_id, model_path=model_path, checkpoint_path=checkpoint,
                                requested_num_replicas=replicas)
        self._admin_call(model_id, "Update", admin_pb2.UpdateRequest(model=model))

    def unpublish(self, model_id: str) -> None:
        self._admin_call(model_id, "Unpublish", admin_pb2.UnpublishRequest(model_id=model_id))

    def list_detail(self, model_id: str) -> admin_pb2.PublishedModel:
        reply = self._admin_call(model_id, "List", admin_pb2.ListRequest(model_id=model_id))
        return reply.published_models[0]

    def generate(self, model_id: str, text: str) -> list[tuple[str, float]]:
        """Generate on a server of the model, trying the next one while a server does not have it (yet)."""
        give_up = time.monotonic() + self._retry_s
        while True:
            for address in self.list_detail(model_id).modelet_addresses:
                try:
                    with grpc.insecure_channel(address) as channel:
                        reply = lm_pb2_grpc.LMServiceStub(channel).Generate(
                            lm_pb2.GenerateRequest(model_key=model_id, text=text))
                    return [(candidate.text, candidate.score) for candidate in reply.texts]
                except grpc.RpcError as error:
                    if error.code() not in _SERVER_RETRIED:
                        raise _rpc_error(error) from None
            if time.monotonic() >= give_up:
                raise SaxClientError("UNAVAILABLE", f"pick for model {model_id} unable to find server "
                                                    f"{go_status_text('UNAVAILABLE', 'Unavailable')}")
            time.sleep(0.5)

    def _admin_call(self, model_id: str, method: str, request):
        try:
            cell = model_name(model_id).cell_full_name
        except SaxError as error:
            raise SaxClientError(error.code or "UNKNOWN", str(error)) from None
        give_up = time.monotonic() + self._retry_s
        while True:
            with grpc.insecure_channel(self._admin_address(cell)) as channel:
                try:
                    return getattr(admin_pb2_grpc.AdminStub(channel), method)(request, timeout=self._retry_s)
                except grpc.RpcError as error:
                    if error.code() not in _ADMIN_RETRIED or time.monotonic() >= give_up:
                        raise _rpc_error(error) from None
            time.sleep(0.5)

    def _admin_address(self, sax_cell: str) -> str:
        cell = cell_dir(self._root, sax_cell)
        if not self._files.dir_exists(cell):
            error = SaxError(f"{go_quote(cell)} is not a directory", "FAILED_PRECONDITION")
            raise SaxClientError("FAILED_PRECONDITION", str(error))
        address = self._files.read_location(self._root, sax_cell)
        if address is None:
            raise SaxClientError("FAILED_PRECONDITION", str(SaxError("got an empty location", "FAILED_PRECONDITION")))
        return address


def _rpc_error(error: grpc.RpcError) -> SaxClientError:
    code = error.code().name if error.code() is not None else "UNKNOWN"
    return SaxClientError(code, go_status_text(code, error.details() or ""))
