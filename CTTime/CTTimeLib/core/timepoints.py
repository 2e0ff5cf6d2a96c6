"""Time points: the paper's baseline (BS), first follow-up (FU) and best response (BR), and their order."""

TIMEPOINTS = ("BS", "FU", "BR")
BASELINE_NAMES = ("bs", "baseline", "pre", "screening")


def order_key(timepoint):
    """Sort key: BS, FU, BR in the paper's order, then any other time point by name."""
    return (TIMEPOINTS.index(timepoint) if timepoint in TIMEPOINTS else len(TIMEPOINTS), str(timepoint))


def is_baseline(timepoint):
    return str(timepoint).lower() in BASELINE_NAMES
