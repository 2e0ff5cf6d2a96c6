"""CTTimeLib: the CT-TIME radiomics signature, without 3D Slicer.

Its folders follow the data through a run, each importing only from the folders listed before it:

    core       errors, resources, the lesion vocabulary and CTTime.* tags, image/mask geometry, safe files,
               the score colour map, time points
    io         CT images, segmentations, DICOM, the user's tables, the coloured segmentation writer
    scoring    pyradiomics extraction and its resampling, standardisation, the published model, lesion scores,
               patient aggregates, harmonisation, the acquisition check
    run        cases, manifest, execution (local processes, Dask), cache, run-folder rules, progress, summary,
               and the pipeline: the one code path used by the CLI, the Slicer module and the batch script
    figures    the tumour-board figure and figure helpers
    analytics  longitudinal, evaluation, survival, training, the HTML cohort report
    cli        the ``cttime`` command

Reference: Bernatowicz K, et al. J Immunother Cancer 2025;13:e009140 (doi:10.1136/jitc-2024-009140);
the published model and scripts are in CT-TIME-public (CC BY 4.0, VHIO).
"""

from .core.version import __version__

__all__ = ["__version__"]
