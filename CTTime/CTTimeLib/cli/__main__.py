"""``python -m CTTimeLib.cli``: the ``cttime`` command."""

from .entry import console

console()
