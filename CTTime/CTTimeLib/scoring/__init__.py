"""From a lesion to its score: feature extraction (pyradiomics, or CTTime's own engine for the signature) and its
per-lesion resampling, standardisation, the published model, lesion scores, patient aggregates, harmonisation, the
acquisition check."""
