"""Delineation proposals: a lesion's 3D mask proposed from its RECIST line (``propose``), and the RECIST line of a
delineated lesion (``marks_from_mask``). See docs/delineation.md for the method and its measured accuracy."""

from .lines import marks_from_mask
from .proposal import ALGORITHM_NAME, ALGORITHM_VERSION, Proposal, propose

__all__ = ["ALGORITHM_NAME", "ALGORITHM_VERSION", "Proposal", "marks_from_mask", "propose"]
