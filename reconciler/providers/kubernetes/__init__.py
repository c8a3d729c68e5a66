"""Kubernetes: the Sax workloads and the service account they run as, by server-side apply."""
