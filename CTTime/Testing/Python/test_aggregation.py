"""Patient aggregation, aggregate statuses and heterogeneity follow the paper's rules, and every aggregate says
what it stands on (lesions scored of lesions in the study, the lesion that sets the minimum)."""

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
    assert row["n_lesions"] == 3 and row["n_scored"] == 3 and row["n_failed"] == 0
    assert row["aggregate_complete"] and row["aggregate_coverage"] == "complete: 3 of 3 lesion(s) scored"
    assert row["min_lesion_id"] == "L0" and row["warning"] == ""
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
    assert row["n_lesions"] == 2 and row["n_scored"] == 1 and row["n_failed"] == 1
    assert row["status_min"] == "uninflamed" and row["heterogeneity"] == "single lesion"


def test_an_aggregate_over_an_incomplete_set_is_marked_not_hidden():
    """2 of 3 lesions failed: the minimum of the one left is kept, named and marked INCOMPLETE."""
    table = lesions([np.nan, 0.96, np.nan], errors=["Lesion L0 is empty", "", "Lesion L2: features NaN"])
    row = summarize(table).iloc[0]
    assert row["ct_time_min"] == 0.96 and row["status_min"] == "inflamed" and row["min_lesion_id"] == "L1"
    assert not row["aggregate_complete"]
    assert row["aggregate_coverage"] == "INCOMPLETE: 1 of 3 lesions scored"
    assert "INCOMPLETE: 1 of 3 lesions scored: the aggregates stand on the scored lesions only" in row["warning"]


def test_a_study_where_every_lesion_failed_has_no_score_and_says_so():
    row = summarize(lesions([np.nan, np.nan], errors=["Lesion L0 is empty", "Lesion L1 is empty"])).iloc[0]
    assert np.isnan(row["ct_time_min"]) and row["status_min"] == "" and row["min_lesion_id"] == ""
    assert not row["aggregate_complete"] and row["aggregate_coverage"] == "NO SCORE: none of 2 lesion(s) could be scored"
    assert row["warning"] == row["aggregate_coverage"]
    unreadable = lesions([np.nan], errors=["Cannot read image ct.nrrd"]).assign(lesion_id="")
    row = summarize(unreadable).iloc[0]
    assert (row["n_lesions"], row["n_scored"], row["n_failed"]) == (0, 0, 1)
    assert row["aggregate_coverage"] == "NO SCORE: the study could not be read"


def test_the_minimum_is_named_and_lesion_warnings_reach_the_patient():
    table = lesions([0.7, 0.3, 0.4]).assign(warning=["", "lesion L1: soft-tissue share 0.34 | demo", "demo"])
    row = summarize(table).iloc[0]
    assert row["min_lesion_id"] == "L1"
    assert row["warning"] == "lesion L1: soft-tissue share 0.34 | demo"  # each warning once


def test_one_row_per_patient_and_time_point():
    table = pd.concat([lesions([0.1, 0.2], "P1", "BS"), lesions([0.7], "P1", "FU"), lesions([0.4, 0.9], "P2", "BS")])
    patients = summarize(table)
    assert list(zip(patients["patient_id"], patients["timepoint"])) == [("P1", "BS"), ("P1", "FU"), ("P2", "BS")]
    assert list(patients["n_lesions"]) == [2, 1, 2]
