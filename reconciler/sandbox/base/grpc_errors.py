"""Errors as Google's gRPC front ends answer them (emulator side): a status code, a message and google.rpc details.

The details travel in the `grpc-status-details-bin` trailer as a google.rpc.Status; google-api-core unpacks them
into the exception's `.details` (RetryInfo, ErrorInfo...) and `.reason` / `.domain` (from ErrorInfo).
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from reconciler.sandbox.base.faults import FaultRule

# The messages Google's front end (ESF) sends when the service gives none of its own.
DEFAULT_MESSAGES = {
    "CANCELLED": "The operation was cancelled.",
    "UNKNOWN": "Unknown error.",
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "DEADLINE_EXCEEDED": "The request was aborted because it exceeded its deadline.",
    "NOT_FOUND": "Requested entity was not found.",
    "ALREADY_EXISTS": "Requested entity already exists",
    "PERMISSION_DENIED": "The caller does not have permission",
    "RESOURCE_EXHAUSTED": "Resource has been exhausted (e.g. check quota).",
    "FAILED_PRECONDITION": "Precondition check failed.",
    "ABORTED": "The operation was aborted.",
    "OUT_OF_RANGE": "Operation was rejected because an argument was out of range.",
    "UNIMPLEMENTED": "Method not implemented.",
    "INTERNAL": "Internal error encountered.",
    "UNAVAILABLE": "The service is currently unavailable.",
    "DATA_LOSS": "Unrecoverable data loss or corruption.",
    "UNAUTHENTICATED": "Request had invalid authentication credentials.",
}


class GrpcApiError(Exception):
    """An error a gRPC emulator answers with; `details` are google.rpc messages (ErrorInfo, RetryInfo...)."""

    def __init__(self, code: str, message: str | None = None, details: tuple[Message, ...] = ()):
        self.code = grpc.StatusCode[code]
        self.message = message or DEFAULT_MESSAGES.get(code, code)
        super().__init__(self.message)
        self.details = details

    def status(self) -> grpc.Status:
        packed = []
        for detail in self.details:
            wrapper = any_pb2.Any()
            wrapper.Pack(detail)
            packed.append(wrapper)
        return rpc_status.to_status(status_pb2.Status(code=self.code.value[0], message=self.message, details=packed))


def error_info(reason: str, domain: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata)


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def fault_error(rule: FaultRule, api_service: str, messages: dict[str, str]) -> GrpcApiError:
    """The error a fault rule answers: its code, the API's own wording for it, a RetryInfo when it has a hint.

    A quota error also carries the ErrorInfo Google's quota system attaches (reason RATE_LIMIT_EXCEEDED). A `drop`
    rule answers UNAVAILABLE: what a gRPC client makes of a reset connection.
    """
    code = "UNAVAILABLE" if rule.drop and rule.status is None and rule.grpc_code is None else rule.grpc_status_name()
    message = (rule.body or {}).get("error", {}).get("message") or messages.get(code)
    details: list[Message] = []
    if code == "RESOURCE_EXHAUSTED":
        details.append(error_info("RATE_LIMIT_EXCEEDED", "googleapis.com", service=api_service,
                                  quota_metric=f"{api_service}/default_requests",
                                  quota_limit="DefaultRequestsPerMinutePerProject"))
    retry_after = rule.retry_after_s()
    if retry_after is not None:
        details.append(retry_info(retry_after))
    return GrpcApiError(code, message, tuple(details))
