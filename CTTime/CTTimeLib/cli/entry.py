"""The installed ``cttime`` command: ``cttime --version`` answers before numpy, SimpleITK or any part of the
pipeline is imported; everything else goes to ``commands``."""

import sys

from ..core.version import VERSION_TEXT


def console():
    """``cttime``: the version at once, else ``commands.console``."""
    if sys.argv[1:] == ["--version"]:
        print(VERSION_TEXT)
        return
    from .commands import console as run_command

    run_command()
