"""A test double of reconciler.sandbox.sax.lm for the admin/model-server protocol tests (selected with
SAXCTL_SANDBOX_LM=tests.sax.fake_lm): the same interface, no JAX model. A checkpoint it can load holds
`fake_lm.json` ({"reply": "..."}); generation appends that reply to the prompt, four candidates best first."""

from __future__ import annotations

import json
from typing import Protocol

GPTJ = "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32"
TINY = "saxml.server.pax.lm.params.lm_cloud.LmCloudSpmd2BTest"
_DEVICES_NEEDED = {GPTJ: 4, TINY: 1}


class CheckpointReader(Protocol):
    def read(self, relative_path: str) -> bytes: ...


class LoadError(Exception):
    pass


def servable_model_paths(device_count: int) -> list[str]:
    return [path for path, needed in _DEVICES_NEEDED.items() if needed == device_count]


class FakeModel:
    def __init__(self, reply: str):
        self._reply = reply

    def generate(self, text: str) -> list[tuple[str, float]]:
        return [(f"{text} {self._reply}{'!' * beam}", -0.5 * (beam + 1)) for beam in range(4)]

    def score(self, prefix: str, suffix: str) -> float:
        return -float(len(suffix))


def load(model_path: str, checkpoint: CheckpointReader, device_count: int) -> FakeModel:
    if model_path not in _DEVICES_NEEDED:
        raise LoadError(f"unknown params class {model_path}")
    if _DEVICES_NEEDED[model_path] != device_count:
        raise LoadError(f"{model_path} needs {_DEVICES_NEEDED[model_path]} devices; this server has {device_count}")
    try:
        return FakeModel(json.loads(checkpoint.read("fake_lm.json"))["reply"])
    except FileNotFoundError as error:
        raise LoadError(str(error)) from None
