"""``python -m CTTimeLib.cli``: the ``cttime`` command."""

from .commands import console

console()
