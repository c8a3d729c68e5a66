"""The GCS front layer: whole storage v1 bucket resources of ours, object traffic streamed to fake-gcs-server."""
