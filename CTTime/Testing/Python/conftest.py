"""Shared test fixtures: the repository's sample data and the shared real CT cohort beside the repository."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "CTTime"))

SHARED_STS = REPO.parent / "shared" / "data" / "sts-ct"
SAMPLE_DATA = REPO / "CTTime" / "Resources" / "SampleData"
SAMPLE_CASES = ("STS_008", "STS_019", "STS_025")


@pytest.fixture(scope="session")
def shared_sts():
    """The 36 real sarcoma CTs of ../shared: present in CI (where their absence fails the run) and on the
    development machines; a user's clone without them skips the tests that need them."""
    if not SHARED_STS.is_dir():
        message = f"needs the 36 sarcoma CTs of {SHARED_STS} (../shared beside the repository, as in CI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_STS


@pytest.fixture(scope="session")
def sample_case():
    """Image and mask paths of the smallest sample case."""
    folder = SAMPLE_DATA / "STS_019"
    return folder / "CT_image.nii.gz", folder / "CT_mask.nii.gz"


@pytest.fixture(scope="session")
def extractor():
    from CTTimeLib.scoring.extraction import FeatureExtractor

    return FeatureExtractor()


@contextlib.contextmanager
def folder_locked(folder):
    """Another process holding ``folder``'s run lock (POSIX flock, as CTTime takes it) for the block; yields its
    process ID."""
    from CTTimeLib.run.run_folder import LOCK_FILE

    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nos.ftruncate(fd, 0)\n"
                               "os.write(fd, str(os.getpid()).encode())\n"
                               "print('locked', flush=True)\ntime.sleep(120)\n", str(Path(folder) / LOCK_FILE)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
