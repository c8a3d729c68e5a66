"""A pod's volumes as directories on this machine, and the credentials a pod is given, as a kubelet prepares them
before a pod's containers start.

Each pod the runner runs gets <pods dir>/<pod uid>/volumes/<volume name>/: an emptyDir is an empty directory; a
configMap volume holds the ConfigMap's keys (or its `items`) as files; a projected volume its sources — a service
account token (TokenRequest, bound to the pod, with the source's audience and expiry), configMap keys and downward API
fields (so the `kube-api-access-*` volume the ServiceAccount admission plugin adds holds `token`, `ca.crt` and
`namespace`). Other kinds (secret, hostPath, persistent volumes) are not made: their mounts stay unmapped. The files
are written once, when the pod first runs (a kubelet refreshes ConfigMaps and tokens; a sandbox pod's life is short),
and removed when the pod is deleted, as a kubelet removes an emptyDir.

The Google token: on GKE a pod's Google client libraries get an access token from the node's metadata server
(Workload Identity: the pod's Kubernetes service account exchanged for the Google service account it is annotated
with). In the sandbox the pod's own service account token (TokenRequest, bound to the pod) stands in for it, as
SAXCTL_SANDBOX_TOKEN: what saxctl presents in the sandbox where it presents an ADC token on GKE.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.sandbox.kube.pod_containers import pod_field

log = logging.getLogger(__name__)

_GOOGLE_TOKEN_EXPIRY_S = 3600  # what the metadata server's access tokens last
_DEFAULT_TOKEN_EXPIRY_S = 3600  # a projected serviceAccountToken source's default expirationSeconds
_REQUEST_TIMEOUT_S = (5, 30)


@dataclass(frozen=True, slots=True)
class PodFiles:
    """What the runner made for one pod: each volume's directory on this machine, and the pod's Google token."""

    volumes: tuple[tuple[str, str], ...]  # (volume name, directory)
    google_token: str

    def directory_of(self, volume: str) -> str | None:
        return dict(self.volumes).get(volume)


class VolumeUnavailable(Exception):
    """A volume cannot be made yet (its ConfigMap missing, the service account not there): the pod waits, as a
    kubelet's does in ContainerCreating, and the runner tries again."""


class PodVolumes:
    def __init__(self, core, root: Path):
        self._core = core
        self._root = root
        self._made: dict[str, PodFiles] = {}  # pod uid → its files

    def prepare(self, pod) -> PodFiles:
        """The pod's files, made the first time (raises VolumeUnavailable, having made nothing it keeps)."""
        uid = pod.metadata.uid
        if uid not in self._made:
            directory = self._root / uid
            try:
                volumes = tuple((volume.name, str(self._make(pod, volume, directory / "volumes" / volume.name)))
                                for volume in pod.spec.volumes or () if _supported(volume))
                token = self._token(pod, audiences=None, expiry_s=_GOOGLE_TOKEN_EXPIRY_S)
            except VolumeUnavailable:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            self._made[uid] = PodFiles(volumes, token)
        return self._made[uid]

    def forget(self, live_uids: Iterable[str]) -> None:
        """Remove the files of every pod not in `live_uids` (deleted pods; also those of an earlier runner)."""
        live = set(live_uids)
        self._made = {uid: files for uid, files in self._made.items() if uid in live}
        if self._root.is_dir():
            for directory in self._root.iterdir():
                if directory.name not in live:
                    shutil.rmtree(directory, ignore_errors=True)

    def _make(self, pod, volume, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        if volume.config_map is not None:
            self._write_config_map(pod, volume.config_map, directory)
        elif volume.projected is not None:
            for source in volume.projected.sources or ():
                if source.service_account_token is not None:
                    token = source.service_account_token
                    audiences = [token.audience] if token.audience else None
                    _write(directory / token.path,
                           self._token(pod, audiences, token.expiration_seconds or _DEFAULT_TOKEN_EXPIRY_S), 0o600)
                elif source.config_map is not None:
                    self._write_config_map(pod, source.config_map, directory)
                elif source.downward_api is not None:
                    for item in source.downward_api.items or ():
                        if item.field_ref is not None:
                            _write(directory / item.path, pod_field(pod, item.field_ref.field_path) or "", 0o644)
        return directory  # an emptyDir: the directory itself

    def _write_config_map(self, pod, reference, directory: Path) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            config_map = self._core.read_namespaced_config_map(reference.name, pod.metadata.namespace,
                                                               _request_timeout=_REQUEST_TIMEOUT_S)
        except ApiException as error:
            if error.status == 404 and reference.optional:
                return
            raise VolumeUnavailable(f"configmap {pod.metadata.namespace}/{reference.name}: {error.status} "
                                    f"{error.reason}") from None
        for path, content in config_map_files(config_map.data or {}, reference.items).items():
            _write(directory / path, content, 0o644)

    def _token(self, pod, audiences: list[str] | None, expiry_s: int) -> str:
        """A token of the pod's service account, bound to the pod (invalid once the pod is gone), as a kubelet asks."""
        from kubernetes.client.exceptions import ApiException

        account = pod.spec.service_account_name or "default"
        request = {"spec": {"expirationSeconds": max(expiry_s, 600),  # the API's minimum
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name,
                                               "uid": pod.metadata.uid}}}
        if audiences:
            request["spec"]["audiences"] = audiences
        try:
            issued = self._core.create_namespaced_service_account_token(account, pod.metadata.namespace, request,
                                                                        _request_timeout=_REQUEST_TIMEOUT_S)
        except ApiException as error:
            raise VolumeUnavailable(f"a token of service account {pod.metadata.namespace}/{account}: "
                                    f"{error.status} {error.reason}") from None
        return issued.status.token


def config_map_files(data: Mapping[str, str], items) -> dict[str, str]:
    """path → content: every key as a file of its name, or only the listed `items` at their paths."""
    if not items:
        return dict(data)
    return {item.path: data[item.key] for item in items if item.key in data}


def _supported(volume) -> bool:
    made = volume.empty_dir is not None or volume.config_map is not None or volume.projected is not None
    if not made:
        log.info("volume %s: not made in the sandbox (only emptyDir, configMap and projected are)", volume.name)
    return made


def _write(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)
