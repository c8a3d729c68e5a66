"""The Compute emulator: compute v1 zones, machine types and regional quotas, from a small table of real zones."""
