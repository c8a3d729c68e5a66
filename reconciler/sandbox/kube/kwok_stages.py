"""What kwok plays for a pod: its default pod stages, except that a Job's pod of an image the pod runner runs is not
made Succeeded by kwok at once — the runner's process decides, as a container decides on a kubelet.

kwok's default pod-complete stage marks every running pod a Job owns Succeeded a moment after it started. The stages
kwok is given replace its defaults whole, so the file holds kwok's own three pod stages (stages/pod-fast.yaml) with
one more condition on pod-complete: none of the pod's images is one of the runner's (matched by name, as the runner
matches them, images.image_name).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

_DEFAULTS = Path(__file__).with_name("stages") / "pod-fast.yaml"
# kwok's selector keys are jq (gojq) queries: the last path element of each container's image, without digest or tag.
IMAGE_NAMES_QUERY = '.spec.containers.[].image | sub("@.*$"; "") | split("/") | .[-1] | sub(":.*$"; "")'


def pod_stages(runner_images: Iterable[str]) -> list[dict]:
    from ruamel.yaml import YAML

    stages = list(YAML(typ="safe").load_all(_DEFAULTS.read_text()))
    names = sorted(set(runner_images))
    if names:
        (complete,) = [stage for stage in stages if stage["metadata"]["name"] == "pod-complete"]
        complete["spec"]["selector"]["matchExpressions"].append(
            {"key": IMAGE_NAMES_QUERY, "operator": "NotIn", "values": names})
    return stages


def write(path: Path, runner_images: Iterable[str]) -> None:
    """kwok's --config file: one Stage document each (JSON is YAML)."""
    out = io.StringIO()
    for stage in pod_stages(runner_images):
        out.write("---\n" + json.dumps(stage, indent=2) + "\n")
    path.write_text(out.getvalue())
