"""The CTTime module's logic without Qt: MRML nodes <-> CTTimeLib.

Everything the Slicer panel needs between the scene and CTTimeLib lives here, so it runs on Slicer's core
libraries alone (the slicer-core wheels) as well as inside Slicer. One concern per file:

    packages   Python packages Slicer does not bundle
    images     volumes and masks between MRML (RAS) and SimpleITK (LPS)
    segments   segment tags, lesions on the CT grid, colouring by score, saving a segmentation
    studies    the studies in the scene (segmentation, CT, patient, time point)
    results    scoring studies with the CLI's code; results on segments and in a table node
    live       live scores: a segment that changes after a Compute is scored again on its own
    proposals  lesions proposed from RECIST lines (line markups or a marks file) added as segments
    export     lesions.csv, patients.csv, coloured .seg.nrrd, DICOM SEG + SR and the tumour board, as the CLI
               writes them

A package, not a CTTimeMRML.py beside CTTime.py: Slicer loads every .py in a module's folder as a module.
"""

from .export import export, write_board, write_dicom
from .images import image_from_kji, ijk_to_ras, lps_geometry, mask_on_image, matrix_to_numpy, volume_to_image
from .live import LiveScore, LiveScores, content_hash, edit_events
from .packages import (ALL_FEATURES_PACKAGES, BOARD_PACKAGES, DICOM_PACKAGES, missing_packages, pinned_requirements,
                       required_packages, requirements)
from .proposals import marks_of_lines, proposal_warnings, propose_segments, scene_lines
from .results import (TABLE_COLUMNS, Results, apply_results, compute, fill_table_node, summary_lines, table_rows,
                      targets)
from .segments import (HU_WINDOW, color_by_score, get_tag, is_target, lesions_from_segmentation, save_segmentation,
                       segment_location, segments, set_location, set_target)
from .studies import (PATIENT_ATTRIBUTE, TIMEPOINT_ATTRIBUTE, TIMEPOINT_CHOICES, Study, node_source, reference_volume,
                      remember_study, scene_studies)

__all__ = ["export", "write_board", "write_dicom", "image_from_kji", "ijk_to_ras", "lps_geometry", "mask_on_image",
           "matrix_to_numpy", "volume_to_image", "LiveScore", "LiveScores", "content_hash", "edit_events",
           "ALL_FEATURES_PACKAGES", "BOARD_PACKAGES", "DICOM_PACKAGES", "missing_packages", "pinned_requirements",
           "required_packages", "requirements",
           "TABLE_COLUMNS", "Results", "apply_results", "compute", "fill_table_node", "summary_lines", "table_rows",
           "targets", "HU_WINDOW", "color_by_score", "get_tag", "is_target", "lesions_from_segmentation",
           "save_segmentation", "segment_location", "segments", "set_location", "set_target", "PATIENT_ATTRIBUTE",
           "TIMEPOINT_ATTRIBUTE", "TIMEPOINT_CHOICES", "Study", "node_source", "reference_volume", "remember_study",
           "scene_studies", "marks_of_lines", "proposal_warnings", "propose_segments",
           "scene_lines"]
