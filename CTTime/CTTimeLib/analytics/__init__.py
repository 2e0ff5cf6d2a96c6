"""Cohort analytics on a lesions table: longitudinal, evaluation, survival, training, the HTML cohort report."""
