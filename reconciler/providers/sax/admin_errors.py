"""The Sax admin's errors in saxctl's words.

The admin pins an old grpc-go whose status conversion does not unwrap Sax's wrapped errors, so most of them arrive as
UNKNOWN with the text (RECIPES §11): the text is recognised as well as the code.
"""

from __future__ import annotations

from reconciler.errors import RemoteError, RetryableError

REPUBLISH_WAIT_S = 10.0  # the admin refuses to publish a name again for about 10 s after its unpublish


class NotFound(RemoteError):
    """The admin has no such model."""


class AlreadyExists(RemoteError):
    """The model id is published already."""


class BeingUnpublished(RetryableError):
    """The name was unpublished moments ago; the admin takes it again after about 10 s."""


def admin_error(method: str, model: str, code_name: str, details: str) -> RemoteError:
    """The error for one failed call of sax.Admin/METHOD about model, from the gRPC status code name and text."""
    text = details or code_name
    lowered = text.lower()
    where = f"sax.Admin/{method} {model}" if model else f"sax.Admin/{method}"
    if "being unpublished" in lowered:
        return BeingUnpublished(f"{where}: the admin still holds {model} from its unpublish (it refuses the name for "
                                f"about {REPUBLISH_WAIT_S:.0f} s)", retry_after=REPUBLISH_WAIT_S)
    if code_name == "NOT_FOUND" or "not found" in lowered:
        return NotFound(f"{where}: the admin has no model {model}")
    if code_name == "ALREADY_EXISTS" or "already exists" in lowered:
        return AlreadyExists(f"{where}: {model} is already published",
                             hint="Someone published it since the plan was made: run `saxctl plan` again.")
    if code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
        return RetryableError(f"{where}: {code_name}: {text}")
    if code_name == "INVALID_ARGUMENT" or "invalid" in lowered:
        return RemoteError(f"{where}: the admin refuses it as invalid: {text}")
    return RemoteError(f"{where}: {code_name}: {text}")
