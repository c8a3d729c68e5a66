"""Sax for the sandbox: stand-ins for Sax's three images, and the language model its model server serves."""
