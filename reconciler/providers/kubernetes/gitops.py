"""`saxctl render SPEC`: the Kubernetes manifests saxctl applies, as YAML documents, for GitOps repositories."""

from __future__ import annotations

import io

from reconciler.providers.kubernetes.manifests import kube_objects
from reconciler.spec.model import Spec


def manifests_yaml(spec: Spec, spec_file: str) -> str:
    """Every object in apply order, one YAML document each; exactly what `saxctl apply` sends (no API call)."""
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: keys stay in manifest order (apiVersion, kind, metadata, spec)
    yaml.width = 4096  # never fold a long image name or annotation onto a second line
    out = io.StringIO()
    out.write(f"# Kubernetes objects of spec {spec.name} ({spec_file}), as saxctl applies them with server-side apply\n"
              "# (field manager saxctl). The ConfigMap is the ApplySet record saxctl prunes from.\n")
    for index, member in enumerate(kube_objects(spec)):
        out.write("---\n" if index else "")
        yaml.dump(member.manifest, out)
    return out.getvalue()
