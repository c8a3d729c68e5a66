"""The sandbox's real Kubernetes control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok nodes."""
