"""The run's log: what other libraries print goes to ``<folder>/cttime.log``, so standard error carries CTTime's
own messages only.

Caught: everything written to file descriptor 2 (ITK's and VNL's C++ warnings and matrix dumps, libraries' own
log handlers, worker processes, which inherit it), Python warnings (pandas, numpy, scikit-learn ...; through
``logging``) and log records no library handler takes (pykwalify's). They are kept in a temporary file and appended to the log when
the command ends, if the folder exists then (a bad input writes no folder, and its noise is dropped); no log is
written when nothing was caught.
"""

import contextlib
import datetime
import io
import logging
import os
import sys
import tempfile
from pathlib import Path

from .run_folder import LOG_FILE


@contextlib.contextmanager
def third_party_output(folder, title="cttime"):
    """Within the block, third-party output goes to ``folder``/cttime.log (``folder`` None or "": dropped)."""
    buffer = tempfile.TemporaryFile(mode="a+b")  # appending: worker processes write to it too
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    previous_stderr = sys.stderr
    try:
        writes_to_fd2 = previous_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # an in-memory stream (tests, embedding): it stays CTTime's
        writes_to_fd2 = False
    os.dup2(buffer.fileno(), 2)
    if writes_to_fd2:
        sys.stderr = io.TextIOWrapper(io.FileIO(saved, "w", closefd=False), encoding=previous_stderr.encoding,
                                      errors="backslashreplace", line_buffering=True)
    handler = logging.StreamHandler(io.TextIOWrapper(os.fdopen(os.dup(buffer.fileno()), "ab"), encoding="utf-8",
                                                     errors="backslashreplace", line_buffering=True))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)  # pyradiomics logs every step at DEBUG
    root = logging.getLogger()  # records no library handler takes (pykwalify's) would else reach stderr
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        if writes_to_fd2:
            sys.stderr.flush()
            sys.stderr = previous_stderr
        os.dup2(saved, 2)
        os.close(saved)
        buffer.seek(0)
        caught = buffer.read()
        buffer.close()
        if folder and str(folder).strip() and caught.strip() and Path(folder).is_dir():
            with open(Path(folder) / LOG_FILE, "ab") as log:
                stamp = datetime.datetime.now().isoformat(timespec="seconds")
                log.write(f"== {title} {stamp}: messages of other libraries\n".encode() + caught.rstrip() + b"\n")

