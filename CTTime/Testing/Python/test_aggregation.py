"""Patient aggregation, aggregate statuses and heterogeneity follow the paper's rules."""

import numpy as np
import pandas as pd
import pytest

from CTTimeLib.scoring.aggregation import heterogeneity, summarize


def lesions(scores, patient="P1", timepoint="BS", errors=None):
    return pd.DataFrame({"patient_id": patient, "timepoint": timepoint,
                         "lesion_id": [f"L{i}" for i in range(len(scores))], "ct_time_score": scores,
                         "original_shape_MeshVolume": [1000.0 * (i + 1) for i in range(len(scores))],
                         "original_shape_SurfaceArea": 100.0, "standardization": "cohort",
                         "error": errors or [""] * len(scores)})


@pytest.mark.parametrize("sd, n, expected", [
    (0.0999, 3, "low"), (0.1, 3, "moderate"), (0.3, 3, "moderate"), (0.3001, 2, "high"),
    (np.nan, 1, "single lesion"), (np.nan, 0, "")])
def test_heterogeneity_classes(sd, n, expected):
    assert heterogeneity(sd, n) == expected


def test_aggregates_and_their_statuses():
    row = summarize(lesions([0.2, 0.6, 0.9])).iloc[0]
    assert row["n_lesions"] == 3 and row["n_failed"] == 0
    assert row["ct_time_min"] == 0.2 and row["ct_time_max"] == 0.9 and row["ct_time_median"] == 0.6
    assert row["ct_time_mean"] == pytest.approx(1.7 / 3)
    assert row["ct_time_sd"] == pytest.approx(np.std([0.2, 0.6, 0.9], ddof=1))
    assert (row["status_min"], row["status_median"], row["status_mean"], row["status_max"]) == (
        "uninflamed", "inflamed", "inflamed", "inflamed")
    assert row["heterogeneity"] == "high"
    assert row["total_volume_mm3"] == 6000.0 and row["total_surface_mm2"] == 300.0


def test_exactly_half_is_uninflamed_and_failed_lesions_are_counted_not_scored():
    table = lesions([0.5, np.nan], errors=["", "Lesion L1 is empty"])
    row = summarize(table).iloc[0]
    assert row["n_lesions"] == 1 and row["n_failed"] == 1
    assert row["status_min"] == "uninflamed" and row["heterogeneity"] == "single lesion"


def test_one_row_per_patient_and_time_point():
    table = pd.concat([lesions([0.1, 0.2], "P1", "BS"), lesions([0.7], "P1", "FU"), lesions([0.4, 0.9], "P2", "BS")])
    patients = summarize(table)
    assert list(zip(patients["patient_id"], patients["timepoint"])) == [("P1", "BS"), ("P1", "FU"), ("P2", "BS")]
    assert list(patients["n_lesions"]) == [2, 1, 2]
