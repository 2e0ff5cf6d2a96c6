"""Files: atomic writing with the user's file mode, output folders, file-name-safe names, content digests."""

import hashlib
import os
import re
import stat
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path

from .errors import CTTimeError
from .text import csv_cell

_BLOCK = 1 << 20


def _umask():
    """The process's umask, read once (Linux: from /proc, without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file; mkstemp's temporaries are 0600


def output_error(path, exc):
    """The CTTimeError for a file that cannot be written (disk full, read-only, no permission)."""
    return CTTimeError(f"Cannot write {path}: {exc.strerror or exc}. Check that the folder is writable and the disk "
                       "has space; files written before are intact, and a rerun resumes where this one stopped.",
                       "output")


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` (with the umask's file mode, so that e.g. a PACS
    sender running as another user can read it) only if the block completes. A file that cannot be written (disk
    full, read-only folder) is a CTTimeError of kind "output"."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(handle)
        yield temporary
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except OSError as exc:
        raise output_error(path, exc) from None
    finally:
        if temporary and os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text):
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def write_table(frame, path):
    """A CSV with formula-like text cells neutralised (``core.text``), written atomically."""
    safe = frame.rename(columns=csv_cell)
    for column in range(safe.shape[1]):
        if safe.dtypes.iloc[column] == object:
            safe.iloc[:, column] = safe.iloc[:, column].map(csv_cell)
    with atomic_path(path) as temporary:
        safe.to_csv(temporary, index=False)


def output_folder(path, what="Output folder"):
    """``path`` as an absolute folder that exists and can be written to, or a CTTimeError saying why not."""
    if not str(path).strip():
        raise CTTimeError(f"{what} is empty (''); give a folder (an unset shell variable?).", "input")
    folder = Path(path).absolute()
    if folder.exists() and not folder.is_dir():
        raise CTTimeError(f"{what} {folder} is a file, not a folder; give a folder.", "input")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CTTimeError(f"{what} {folder} cannot be written to: {exc.strerror or exc}; choose a folder you can "
                          "write to (and with free space).", "input") from None
    return folder


def output_file(path, what="Output file"):
    """``path`` as an absolute file path in a folder that can be written to (not '', not a folder), or a
    CTTimeError saying why not."""
    if not str(path).strip():
        raise CTTimeError(f"{what} is empty (''); give a file name.", "input")
    file = Path(path).absolute()
    if file.is_dir():
        raise CTTimeError(f"{what} {file} is a folder; give a file name.", "input")
    output_folder(file.parent, f"The folder of {what.lower()} {file.name}")
    return file


def check_regular(path, what, kind="input", hint=""):
    """Refuse a device, pipe or socket (reading one may never end); a missing path is left to the reader."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise CTTimeError(f"{what} {path} is not a regular file (a device, pipe or socket); give a file."
                          + (f" {hint}" if hint else ""), kind)


def safe_name(text, limit=80):
    """A file-name-safe form of a patient, time point or lesion name (ASCII, no separators)."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._")
    return cleaned[:limit] or "unnamed"


def digest(path):
    """SHA-256 of a file's content, or of a folder's files (relative names and contents, in sorted order)."""
    path = Path(path)
    check_regular(path, "Input")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    total = hashlib.sha256()
    for file in files:
        if path.is_dir():
            total.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                total.update(block)
    return total.hexdigest()
