"""Files: atomic writing, file-name-safe names, content digests."""

import hashlib
import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path

_BLOCK = 1 << 20
_UMASK = os.umask(0o022)  # read once, at import (setting it later would race with other threads)
os.umask(_UMASK)


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block completes. The file gets the
    permissions of any new file (mkstemp's are owner-only), so that e.g. a PACS sender running as another user can
    read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text):
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def write_table(frame, path):
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def safe_name(text, limit=80):
    """A file-name-safe form of a patient, time point or lesion name (ASCII, no separators)."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._")
    return cleaned[:limit] or "unnamed"


def digest(path):
    """SHA-256 of a file's content, or of a folder's files (relative names and contents, in sorted order)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    total = hashlib.sha256()
    for file in files:
        if path.is_dir():
            total.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                total.update(block)
    return total.hexdigest()
