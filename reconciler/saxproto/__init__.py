"""Sax's wire protos (packages `sax` and `sax.server.lm`), written for saxctl and compiled by `build.py`."""
