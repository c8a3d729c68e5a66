"""Sax: models published in a Sax cell through the admin's gRPC API (reached by the Kubernetes API's port-forward)."""
