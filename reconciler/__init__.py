"""saxctl: make Google Cloud, Kubernetes and Sax match one declarative spec."""

__version__ = "0.1.0"
