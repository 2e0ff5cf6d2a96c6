"""Shared test fixtures: the repository's sample data and the shared real CT cohort beside the repository."""

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
    """The 36 real sarcoma CTs of ../shared (present in CI and on the development machines)."""
    if not SHARED_STS.is_dir():
        pytest.fail(f"{SHARED_STS} is missing: the tests need ../shared beside the repository")
    return SHARED_STS


@pytest.fixture(scope="session")
def sample_case():
    """Image and mask paths of the smallest sample case."""
    folder = SAMPLE_DATA / "STS_019"
    return folder / "CT_image.nii.gz", folder / "CT_mask.nii.gz"


@pytest.fixture(scope="session")
def extractor():
    from CTTimeLib.extraction import FeatureExtractor

    return FeatureExtractor()
