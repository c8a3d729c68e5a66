"""Ansible's kubernetes.core.k8s on the same manifests: the third tool of bench.kube_plan_apply.

The play applies the objects by server-side apply with the same field manager as saxctl, so that either tool's
apply is a no-op after the other's; `--check --diff` is Ansible's plan (a server-side dry run per object). The
collection runs in this interpreter (it imports the same `kubernetes` client saxctl's venv has), on localhost.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bench.harness import Measured, run_measured

PLAY = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: the tutorial's objects, by server-side apply
      kubernetes.core.k8s:
        kubeconfig: {kubeconfig}
        state: present
        apply: true
        server_side_apply: {{field_manager: {field_manager}}}
        definition: "{{{{ lookup('file', '{manifests}') | from_yaml_all | list }}}}"
"""


class Ansible:
    def __init__(self, kubeconfig: str, scratch: Path, *, field_manager: str):
        self.playbook = scratch / "ansible-play.yaml"
        self.manifests = scratch / "ansible-objects.yaml"
        self.playbook.write_text(PLAY.format(kubeconfig=json.dumps(kubeconfig), field_manager=field_manager,
                                             manifests=self.manifests))
        self.env = {**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
                    "ANSIBLE_LOCAL_TEMP": str(scratch / "ansible-tmp")}
        self.command = str(Path(sys.executable).with_name("ansible-playbook"))

    def write_manifest(self, objects: list[dict]) -> None:
        self.manifests.write_text("\n---\n".join(json.dumps(each) for each in objects))

    def run(self, mode: str) -> Measured:
        """mode "check": Ansible's plan (--check --diff); "apply": the play. Both exit 0 with or without changes."""
        check = ["--check", "--diff"] if mode == "check" else []
        return run_measured([self.command, *check, str(self.playbook)], env=self.env)

    def version(self) -> str:
        from ansible import release
        from ansible_collections.kubernetes import core  # a namespace package: no __file__, one path

        manifest = Path(next(iter(core.__path__))) / "MANIFEST.json"
        collection = json.loads(manifest.read_text())["collection_info"]["version"]
        return f"ansible-core {release.__version__}, kubernetes.core {collection}"


def changed(measured: Measured) -> int:
    """The play recap's changed count: what Ansible would change (check) or changed (apply)."""
    for line in measured.out.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise SystemExit(f"no play recap in Ansible's output:\n{measured.out}{measured.err}")
