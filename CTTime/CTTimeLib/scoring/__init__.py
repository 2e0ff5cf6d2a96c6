"""From a lesion to its score: pyradiomics extraction and its per-lesion resampling, standardisation, the
published model, lesion scores, patient aggregates, harmonisation, the acquisition check."""
