"""GKE: the cluster and its TPU node pools (container v1)."""
