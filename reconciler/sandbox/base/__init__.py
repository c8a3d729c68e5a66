"""What every Python emulator stands on: HTTP server and routing, faults, request log, errors, store, operations."""
