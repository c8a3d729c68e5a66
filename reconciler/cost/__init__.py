"""What a plan costs per month at list prices: TPU chips, CPU nodes and the GKE cluster fee (a pure read of a plan)."""
