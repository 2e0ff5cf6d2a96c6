"""The ``cttime`` command line: ``entry`` (the installed command), ``commands`` (its parser and run commands),
``analytics`` (the analytics subcommands)."""

from .entry import console

__all__ = ["console"]
