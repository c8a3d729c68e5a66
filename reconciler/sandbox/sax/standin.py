"""What every Sax stand-in process shares: the address it binds and advertises, its sandbox control port (health,
fault rules, request log), and Sax's errors on the wire.

The sandbox runner starts a stand-in for a pod with the pod's own args and env, plus SAXCTL_SANDBOX_POD_IP (the
pod's IP: where it listens and what it advertises, as a container does on its pod's IP). The control port is
SAXCTL_SANDBOX_CONTROL_PORT, by default the API port + 1000; SAXCTL_SANDBOX_FAULTS installs fault rules at start
(a JSON list, the rules of reconciler/sandbox/base/faults.py).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable

from reconciler.sandbox.base.grpc_errors import GrpcApiError
from reconciler.sandbox.base.grpcbase import GrpcEmulator, Method
from reconciler.sandbox.sax.naming import SaxError

POD_IP_ENV = "SAXCTL_SANDBOX_POD_IP"
CONTROL_PORT_ENV = "SAXCTL_SANDBOX_CONTROL_PORT"
FAULTS_ENV = "SAXCTL_SANDBOX_FAULTS"
_CONTROL_PORT_OFFSET = 1000

log = logging.getLogger(__name__)


def pod_ip() -> str:
    return os.environ.get(POD_IP_ENV, "127.0.0.1")


def control_port(api_port: int) -> int:
    raw = os.environ.get(CONTROL_PORT_ENV)
    return int(raw) if raw else api_port + _CONTROL_PORT_OFFSET


def start(emulator: GrpcEmulator, port: int) -> str:
    """Install the start-up faults, bind the API and control ports; returns the advertised "IP:port"."""
    faults = os.environ.get(FAULTS_ENV)
    if faults:
        emulator.faults.add(json.loads(faults))
    host = pod_ip()
    emulator.start(host, port, control_port(port))
    log.info("%s: gRPC on %s:%d, sandbox control on http://%s:%d", emulator.name, host, port, host,
             control_port(port))
    return f"{host}:{port}"


def sax_method(answer: Callable, request_type, *, read: bool, with_context: bool = False) -> Method:
    """A method whose SaxError goes on the wire as the Sax admin's errors most likely do: UNKNOWN with the text."""

    @functools.wraps(answer)
    def answer_in_sax_words(*args):
        try:
            return answer(*args)
        except SaxError as error:
            raise GrpcApiError("UNKNOWN", str(error)) from None

    return Method(answer_in_sax_words, request_type.FromString, lambda reply: reply.SerializeToString(), read,
                  with_context)
