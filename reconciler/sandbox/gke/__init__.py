"""The GKE emulator: container v1 clusters, node pools and operations; nodes handed to the Kubernetes side."""
