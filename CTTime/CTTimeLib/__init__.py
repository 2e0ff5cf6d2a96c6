"""CTTimeLib: the CT-TIME radiomics signature, without 3D Slicer.

The modules follow the data as it flows through a run:

    inputs           CT image and lesion segmentation -> Lesion masks on the image grid
    extraction       pyradiomics, driven by the fixed Table-2 parameter file -> 107 features per lesion
    standardization  z-scores against the scored cohort or a stored reference
    signature        the published elastic-net model -> P(inflamed) and status per lesion
    aggregation      per patient and time point: min / median / mean / max, heterogeneity, totals
    colormap         one colour map from score to colour, shared by every output
    outputs          lesions.csv, patients.csv and the coloured .seg.nrrd, written atomically
    pipeline         the one code path used by the CLI, the Slicer module and the batch script
    cli              the ``cttime`` command

Reference: Bernatowicz K, et al. J Immunother Cancer 2025;13:e009140 (doi:10.1136/jitc-2024-009140);
the published model and scripts are in CT-TIME-public (CC BY 4.0, VHIO).
"""

__version__ = "0.1.0"
