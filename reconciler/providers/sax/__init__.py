"""Sax: models published in the Sax cell (the admin server's HTTP front)."""
