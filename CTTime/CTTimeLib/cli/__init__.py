"""The ``cttime`` command line."""

from .commands import console, main

__all__ = ["console", "main"]
