"""The Kubernetes part of a no-op `saxctl plan` on a spec's objects grown to SIZE: what each timed saxctl process of
bench/kube_plan_size.py runs, and the objects it plans (kubectl diffs the same ones).

A spec holds 6 Kubernetes objects (the ApplySet record, the KSA, the admin, model and HTTP server Deployments, the
HTTP Service; 7 for a multi-host slice): replicas add pods, not objects, and a spec has one cell and one namespace.
So a size beyond the spec's own is its objects plus copies of its members under new names (`sax-http-007`, its pods
labelled `app: sax-http-007`), members of the spec's ApplySet like its own, as bench/sax_plan.py builds its 1,000
models from the spec's one.

    python -m bench.kube_sized_plan SPEC SIZE KUBECONFIG [-v]

loads the spec, builds the SIZE objects, and does what `saxctl plan --kubeconfig` does for them: observe each, list
the ApplySet's records and members, diff, preflight. It exits 1 naming what is not a no-op (a change, or an owned
object the plan would prune). With -v it logs each request as `saxctl -v` does. Only saxctl's own modules are
imported here, so the process pays what a saxctl process pays, and no more.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

COPIED_LABEL = "app"  # the label a Deployment selects its pods by and a Service its endpoints by


def sized_resources(spec, size: int) -> list:
    """The spec's Kubernetes resources followed by copies of its members, SIZE in all (at least the spec's own)."""
    from reconciler.providers.kubernetes.resources import desired_resources

    own = desired_resources(spec)
    members = own[1:]  # the first is the ApplySet record: a spec has one
    copies = [_copy(member, index) for index in range(1, size) for member in members]
    return own + copies[:max(0, size - len(own))]


def _copy(resource, index: int):
    from reconciler.providers.kubernetes.fields import field_set, flatten
    from reconciler.providers.kubernetes.resources import address_of, remote_id

    manifest = copy.deepcopy(resource.params["manifest"])
    meta = manifest["metadata"]
    meta["name"] = f"{meta['name']}-{index:03d}"
    spec = manifest.get("spec") or {}
    for labels in (spec.get("selector"), (spec.get("selector") or {}).get("matchLabels"),
                   ((spec.get("template") or {}).get("metadata") or {}).get("labels")):
        if isinstance(labels, dict) and isinstance(labels.get(COPIED_LABEL), str):
            labels[COPIED_LABEL] = f"{labels[COPIED_LABEL]}-{index:03d}"
    address = address_of(manifest)
    return dataclasses.replace(resource, address=address, name=address.name,
                               fields=flatten(manifest, field_set(manifest)),
                               params={**resource.params, "manifest": manifest},
                               remote_id=remote_id(manifest["kind"], meta["namespace"], meta["name"],
                                                   resource.params["cluster"]))


def main(argv: list[str]) -> int:
    spec_path, size, kubeconfig = argv[0], int(argv[1]), argv[2]
    if "-v" in argv[3:]:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from reconciler.engine.resource import Action, resolved
    from reconciler.providers.kubernetes.options import KubeOptions
    from reconciler.providers.kubernetes.provider import KubernetesProvider
    from reconciler.spec.loader import load_spec

    spec = load_spec(spec_path)
    cluster = {"endpoint": "via-kubeconfig", "ca_certificate": ""}  # --kubeconfig: the cluster's outputs are unused
    resources = [resolved(r, {r.inside: cluster}) for r in sized_resources(spec, size)]
    provider = KubernetesProvider(KubeOptions(kubeconfig=kubeconfig))
    observed = provider.observe(resources)
    desired = {r.address for r in resources}
    pruned = [owned.resource.address for owned in provider.owned(spec.name, frozenset(r.kind for r in resources), {})
              if owned.resource.address not in desired]
    changes = [provider.diff(r, observed[r.address]) for r in resources]
    problems = provider.preflight(changes)
    changed = [f"{c.address} {c.action.value}: {c.reason}" for c in changes if c.action is not Action.NOOP]
    if changed or pruned or problems:
        print("not a no-op plan:", *changed, *(f"{address} would be pruned" for address in pruned),
              *(problem.message for problem in problems), sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
