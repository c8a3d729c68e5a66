"""Error bodies as Google's JSON APIs send them, so clients map them to the same exceptions as in production."""

from __future__ import annotations

# Default reason and message per status, as GCS words them (google-api-core maps by status, callers read reason).
_DEFAULTS: dict[int, tuple[str, str, str]] = {
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


class ApiError(Exception):
    """An error an emulator answers with: HTTP status, reason and message of a Google JSON API error."""

    def __init__(self, code: int, message: str | None = None, reason: str | None = None):
        default_reason, _, default_message = _DEFAULTS.get(code, ("unknown", "global", "Error"))
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.reason = reason or default_reason

    def body(self) -> dict:
        return error_body(self.code, self.message, self.reason)


def error_body(code: int, message: str | None = None, reason: str | None = None) -> dict:
    """`{"error": {"code", "message", "errors": [{"message", "domain", "reason"}]}}`."""
    default_reason, domain, default_message = _DEFAULTS.get(code, ("unknown", "global", "Error"))
    message = message or default_message
    reason = reason or default_reason
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}
