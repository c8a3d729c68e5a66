"""The images the sandbox's pod runner can run, and what runs in their place: a container of one of these images, on a
kwok node, becomes a local process.

A row is what a container runtime knows of an image: its entrypoint, to which the container's `args` are appended,
and the executable a container's `command` may name instead (as `command: [saxctl, drift, ...]` replaces an image's
ENTRYPOINT). An image is known by the last element of its reference, without tag or digest, so any registry and any
version of it runs the same stand-in.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

# Extra rows, for tests: a JSON object {image name: {"entrypoint": [argv...], "executable": name or null}}, read by the
# runner at start (the tests' session sandbox runs a small echo server under an image of its own this way).
EXTRA_IMAGES_ENV = "SAXCTL_SANDBOX_RUNNER_IMAGES"


@dataclass(frozen=True, slots=True)
class Image:
    entrypoint: tuple[str, ...]
    executable: str | None = None  # the name a container's `command[0]` may give the entrypoint by

    def argv(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """The process's command line, as Kubernetes combines an image with a container's command and args.

        Raises UnrunnableContainer for a command this image does not have (the runtime's "executable not found").
        """
        if not command:
            return [*self.entrypoint, *(args or [])]
        if self.executable is None or os.path.basename(command[0]) != self.executable:
            raise UnrunnableContainer(f"executable {command[0]!r} not found in the image (its stand-in runs "
                                      f"{' '.join(self.entrypoint)})")
        return [*self.entrypoint, *command[1:], *(args or [])]


class UnrunnableContainer(Exception):
    """A container the runner cannot start: its message says why, as a kubelet's event would."""


def _module(name: str) -> Image:
    return Image((sys.executable, "-m", name))


# Sax's three images (RECIPES §8) → the sandbox's stand-ins (reconciler/sandbox/sax/); the saxctl image (the
# Containerfile's, ENTRYPOINT ["saxctl"]) → this checkout's saxctl, as the CronJob of `saxctl cron render` runs it.
SAXCTL_IMAGE = "saxctl"
IMAGES: dict[str, Image] = {
    "sax-admin-server": _module("reconciler.sandbox.sax.admin"),
    "sax-model-server": _module("reconciler.sandbox.sax.model_server"),
    "sax-http": _module("reconciler.sandbox.sax.http_server"),
    SAXCTL_IMAGE: Image((sys.executable, "-m", "reconciler"), executable="saxctl"),
}


def image_name(reference: str) -> str:
    """us-docker.pkg.dev/cloud-tpu-images/inference/sax-http:v1.0.0 → sax-http (also without a tag, or by digest)."""
    last = reference.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def table(environ: dict[str, str] | None = None) -> dict[str, Image]:
    """The product table, with the extra rows of $SAXCTL_SANDBOX_RUNNER_IMAGES on top."""
    extra = (os.environ if environ is None else environ).get(EXTRA_IMAGES_ENV)
    if not extra:
        return dict(IMAGES)
    rows = {name: Image(tuple(row["entrypoint"]), row.get("executable")) for name, row in json.loads(extra).items()}
    return {**IMAGES, **rows}
