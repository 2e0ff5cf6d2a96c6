"""Deferred imports: a module that only some paths use is imported when first used, so the ``cttime`` command
starts without it (pandas: docs/performance.md, "Start-up"), and can be imported ahead in a background thread."""

import importlib
import threading


class Deferred:
    """Stands for the module ``name``: reading an attribute imports the module (once) and reads it there."""

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attribute):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self):
        return f"<deferred module {self._name!r}>"


def preload(*names):
    """Import ``names`` in a daemon thread while the caller goes on (Python's import locks make a use of the module
    in the meantime wait for it); its time overlaps work that runs outside Python's lock, such as reading a CT."""
    def load():
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError:  # not installed: its first use says so, in the caller's thread
                pass

    thread = threading.Thread(target=load, daemon=True, name="cttime-preload")
    thread.start()
    return thread
