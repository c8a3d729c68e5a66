"""The GCS front answers the resumable-upload status query as GCS does (fake-gcs-server would commit the upload)."""

from __future__ import annotations

import requests

PROJECT = "saxctl-test"
HALF = 256 << 10  # GCS chunks are multiples of 256 KiB


def test_status_query_reports_the_offset_and_does_not_commit(sandbox, unique_name):
    client = sandbox.storage_client(PROJECT)
    bucket = unique_name("resumable")
    client.create_bucket(bucket)
    url = client.bucket(bucket).blob("big").create_resumable_upload_session(size=2 * HALF)
    first = requests.put(url, data=b"a" * HALF, headers={"Content-Range": f"bytes 0-{HALF - 1}/{2 * HALF}"},
                         timeout=10)
    assert first.status_code == 308

    status = requests.put(url, headers={"Content-Range": f"bytes */{2 * HALF}"}, timeout=10)
    assert (status.status_code, status.headers.get("Range")) == (308, f"bytes=0-{HALF - 1}")
    assert client.bucket(bucket).get_blob("big") is None, "a status query must not finish the upload"

    last = requests.put(url, data=b"b" * HALF, headers={"Content-Range": f"bytes {HALF}-{2 * HALF - 1}/{2 * HALF}"},
                        timeout=10)
    assert last.status_code == 200 and last.json()["size"] == str(2 * HALF)
    assert client.bucket(bucket).get_blob("big").size == 2 * HALF
