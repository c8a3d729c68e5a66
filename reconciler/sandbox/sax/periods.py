"""Sax's clocks (github:google/saxml admin/mgr.go, admin/state.go, common/location.go, platform/cloud.go), scaled.

Every period defaults to Sax's own; SAXCTL_SANDBOX_SAX_TIME_SCALE (e.g. 0.05) shrinks them all at once, so that a
test sees the same sequence of events (publish, assign on the next refresh, load, prune a silent server) in a
fraction of the time, without any test sleeping for a fixed while.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TIME_SCALE_ENV = "SAXCTL_SANDBOX_SAX_TIME_SCALE"


@dataclass(frozen=True, slots=True)
class Periods:
    refresh_s: float = 10.0  # the admin assigns models, saves state.proto, and polls each server's status
    prune_s: float = 25.0  # a model server whose status the admin could not read for this long is dropped
    first_join_s: float = 2.0  # a model server's first Join after it starts
    location_watch_s: float = 5.0  # how often a model server re-reads location.proto (joins again on a change)
    rejoin_s: float = 15 * 60.0  # a model server joins again at this interval even when nothing changed
    join_retry_s: float = 60.0  # how long one Join is retried (on DEADLINE_EXCEEDED or CANCELLED)
    rpc_timeout_s: float = 10.0  # the admin's GetStatus and dial timeouts, the model server's Join timeout

    @classmethod
    def from_env(cls) -> "Periods":
        raw = os.environ.get(TIME_SCALE_ENV, "1")
        try:
            scale = float(raw)
        except ValueError:
            raise SystemExit(f"{TIME_SCALE_ENV}={raw!r} is not a number") from None
        if not 0 < scale <= 10:
            raise SystemExit(f"{TIME_SCALE_ENV}={raw!r} must be in (0, 10]")
        defaults = cls()
        return cls(**{name: getattr(defaults, name) * scale for name in cls.__slots__})
