"""Sax for the sandbox: stand-ins for the admin, the model server and the tutorial's HTTP server, and the language
model the model server serves (README.md beside the sandbox package says how each differs from real Sax)."""
