"""Streaming conversion of Hugging Face checkpoints to the layout Sax loads, and their upload."""
