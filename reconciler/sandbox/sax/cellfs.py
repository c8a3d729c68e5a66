"""Sax's files on GCS (saxml common/platform/cloud.go, common/cell.go, common/addr.go, common/config.go):
per cell, under SAX_ROOT, `sax/<cell>/METADATA` (an empty object: GCS has no directories), `config.proto` and
`location.proto`; under the cell's fs_root, `sax/<cell>/METADATA` and `state.proto`.

Read and written through google-cloud-storage: in the sandbox its STORAGE_EMULATOR_HOST, on GKE the pod's
Workload Identity.
"""

from __future__ import annotations

import os

from reconciler.saxproto import admin_pb2

DIRECTORY_PLACEHOLDER = "METADATA"
_PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"  # object reads and writes need none; the client wants one


def cell_dir(root: str, sax_cell: str) -> str:
    """The cell's directory under a root: gs://B/sax-root + /sax/test → gs://B/sax-root/sax/test."""
    return root.rstrip("/") + sax_cell


class SaxFiles:
    """Whole-object reads and writes of gs:// paths (Sax writes each file whole, as GCS does)."""

    def __init__(self) -> None:
        from reconciler.providers.gcs.client import storage_client

        self._client = storage_client(os.environ.get(_PROJECT_ENV, "sax-sandbox"))

    def read(self, url: str) -> bytes | None:
        """The object's bytes, None when it does not exist."""
        from google.api_core import exceptions

        try:
            return self._blob(url).download_as_bytes()
        except exceptions.NotFound:
            return None

    def write(self, url: str, data: bytes) -> None:
        self._blob(url).upload_from_string(data, content_type="application/octet-stream")

    def dir_exists(self, url: str) -> bool:
        return self._blob(f"{url}/{DIRECTORY_PLACEHOLDER}").exists()

    def create_dir(self, url: str) -> None:
        self.write(f"{url}/{DIRECTORY_PLACEHOLDER}", b"")

    def read_location(self, sax_root: str, sax_cell: str) -> str | None:
        """The admin's "IP:port" from location.proto; None when there is none (yet)."""
        raw = self.read(f"{cell_dir(sax_root, sax_cell)}/location.proto")
        if raw is None:
            return None
        return admin_pb2.Location.FromString(raw).location or None

    def _blob(self, url: str):
        bucket, name = split_gs_url(url)
        return self._client.bucket(bucket).blob(name)


def split_gs_url(url: str) -> tuple[str, str]:
    if not url.startswith("gs://") or "/" not in url[5:]:
        raise ValueError(f"{url!r} is not a gs://BUCKET/PATH address")
    bucket, _, name = url[5:].partition("/")
    return bucket, name
