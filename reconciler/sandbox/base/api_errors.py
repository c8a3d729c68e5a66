"""Emulator-side error replies, as Google's APIs write them, so clients raise the same exceptions as in production.

Two body formats exist: storage v1 and compute v1 answer the legacy `{"error": {code, message, errors[]}}`; APIs
served from protocol buffers (container v1, cloudresourcemanager v3) add the canonical `status` name and `details`.
(The client-side mapping of errors lives in reconciler/providers/google_errors.py.)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

# Canonical status per HTTP code when a caller names none (google.rpc.Code's HTTP mapping).
STATUS_OF_CODE = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                   409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
                   500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                   504: "DEADLINE_EXCEEDED"}
# The legacy errors[].reason each canonical status comes with (what "googleapi: Error 409: ..., aborted" prints).
_REASON_OF_STATUS = {"INVALID_ARGUMENT": "badRequest", "FAILED_PRECONDITION": "failedPrecondition",
                     "OUT_OF_RANGE": "badRequest", "UNAUTHENTICATED": "required", "PERMISSION_DENIED": "forbidden",
                     "NOT_FOUND": "notFound", "ALREADY_EXISTS": "alreadyExists", "ABORTED": "aborted",
                     "RESOURCE_EXHAUSTED": "rateLimitExceeded", "CANCELLED": "cancelled", "INTERNAL": "backendError",
                     "UNIMPLEMENTED": "notImplemented", "UNAVAILABLE": "backendError",
                     "DEADLINE_EXCEEDED": "deadlineExceeded"}
# The canonical default messages of the protobuf-served APIs.
_RPC_MESSAGES = {"INVALID_ARGUMENT": "Request contains an invalid argument.",
                 "FAILED_PRECONDITION": "Precondition check failed.",
                 "UNAUTHENTICATED": "Request had invalid authentication credentials.",
                 "PERMISSION_DENIED": "The caller does not have permission", "NOT_FOUND": "Requested entity was not found.",
                 "ALREADY_EXISTS": "Requested entity already exists", "ABORTED": "The operation was aborted.",
                 "RESOURCE_EXHAUSTED": "Resource has been exhausted (e.g. check quota).",
                 "INTERNAL": "Internal error encountered.", "UNAVAILABLE": "The service is currently unavailable.",
                 "DEADLINE_EXCEEDED": "The request deadline was exceeded.",
                 "UNIMPLEMENTED": "Operation is not implemented, or supported, or enabled."}
# Default reason and message per status, as GCS words them (google-api-core maps by status, callers read reason).
_LEGACY_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: ("invalid", "global", "Invalid argument."),
    401: ("required", "global", "Anonymous caller does not have access."),
    403: ("forbidden", "global", "The caller does not have permission."),
    404: ("notFound", "global", "Not Found"),
    409: ("conflict", "global", "Conflict"),
    412: ("conditionNotMet", "global", "Precondition Failed"),
    429: ("rateLimitExceeded", "usageLimits",
          "The rate of change requests to the bucket exceeds the rate limit. Please reduce the rate of create, "
          "update, and delete requests."),
    500: ("backendError", "global", "Backend Error"),
    502: ("badGateway", "global", "Bad Gateway"),
    503: ("backendError", "global", "The service is currently unavailable."),
    504: ("backendError", "global", "Gateway Timeout"),
}


class ErrorFormat(Enum):
    LEGACY = "legacy"  # storage v1, compute v1
    RPC = "rpc"  # container v1, cloudresourcemanager v3: + status, details


class ApiError(Exception):
    """An error an emulator answers with: HTTP code, message, and (RPC format) canonical status and details.

    `reason` is the legacy errors[].reason; by default the one Google pairs with the status (or, in the legacy
    format, with the HTTP code). `headers` go out with the reply (Retry-After on a 429).
    """

    def __init__(self, code: int, message: str | None = None, reason: str | None = None, *,
                 status: str | None = None, details: list[dict] | None = None,
                 headers: Mapping[str, str] | None = None):
        self.code = code
        self.status = status or STATUS_OF_CODE.get(code, "UNKNOWN")
        self._message = message
        self._reason = reason
        self.details = details or []
        self.headers = dict(headers or {})
        super().__init__(message or self.message_for(ErrorFormat.RPC))

    @property
    def message(self) -> str:
        return self.message_for(ErrorFormat.LEGACY)

    @property
    def reason(self) -> str:
        return self._reason or _LEGACY_DEFAULTS.get(self.code, ("unknown",))[0]

    def message_for(self, fmt: ErrorFormat) -> str:
        if self._message:
            return self._message
        if fmt is ErrorFormat.RPC:
            return _RPC_MESSAGES.get(self.status, "Unknown error.")
        return _LEGACY_DEFAULTS.get(self.code, ("", "", "Error"))[2]

    def body(self, fmt: ErrorFormat = ErrorFormat.LEGACY) -> dict:
        message = self.message_for(fmt)
        if fmt is ErrorFormat.LEGACY:
            return error_body(self.code, message, self._reason)
        reason = self._reason or _REASON_OF_STATUS.get(self.status, "unknown")
        error = {"code": self.code, "message": message,
                 "errors": [{"message": message, "domain": "global", "reason": reason}], "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def error_body(code: int, message: str | None = None, reason: str | None = None) -> dict:
    """The legacy body: `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}]}}`."""
    default_reason, domain, default_message = _LEGACY_DEFAULTS.get(code, ("unknown", "global", "Error"))
    message = message or default_message
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason or default_reason}]}}


def default_error(status: int, fmt: ErrorFormat, service: str) -> ApiError:
    """The error a fault rule with this status and no body of its own answers."""
    if status == 429 and fmt is ErrorFormat.RPC:
        return rate_limited(service)
    return ApiError(status)


def bad_request(message: str, field: str | None = None) -> ApiError:
    """400 INVALID_ARGUMENT; with a field, the google.rpc.BadRequest detail ESF attaches to body parse errors."""
    details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}]}] if field is not None else None
    return ApiError(400, message, status="INVALID_ARGUMENT", details=details)


def rate_limited(service: str, retry_after_s: float = 1.0) -> ApiError:
    """429 RESOURCE_EXHAUSTED as the RPC-format APIs send it: ErrorInfo RATE_LIMIT_EXCEEDED naming the service."""
    message = (f"Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service '{service}'.")
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com", "metadata": {"service": service, "quota_metric": f"{service}/requests",
                                                         "quota_limit": "RequestsPerMinutePerProject"}}]
    return ApiError(429, message, status="RESOURCE_EXHAUSTED", details=details,
                    headers={"Retry-After": f"{retry_after_s:g}"})
