"""Soft-tissue share: how much of a drawn lesion its first-order and texture features describe.

CT-TIME's parameter file re-segments each lesion to -100..300 HU before computing first-order and texture features:
voxels of air and fat below -100 HU and of bone or dense contrast above 300 HU are dropped (shape features keep the
drawn mask). The soft-tissue share is voxels kept / voxels of the lesion mask, counted as pyradiomics counts them:
on the grid the features see (the prepared image and mask, after the 1 mm resampling; see ``FeatureExtractor.
prepare``), with the parameter file's range and mode. Any extractor with the same prepare/features interface can
call ``soft_tissue_share`` on its prepared image and mask.

On the 36 sarcomas of the demo cohort the share is 0.92 to 1.00, on the two lung tumours of pyradiomics' test data
(5 mm slices) 0.57 and 0.88. Below ``SHARE_THRESHOLD`` (0.5) most of what was drawn is not soft tissue (a lung lesion
drawn with the aerated lung around it, a mask slipped onto bone or fat), so the features describe a minority of the
drawing: the lesion is scored but flagged. Below ``FAIL_THRESHOLD`` (0.1) the drawing misses its lesion (a lung mask
mirrored left-right keeps 0.04% of its voxels, lying over aerated lung): the lesion fails with kind "mask" and keeps
its share in its row. The measured cases are in docs/bad-inputs.md (``benchmarks/measure_soft_tissue.py``).
"""

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError

SHARE_THRESHOLD = 0.5
FAIL_THRESHOLD = 0.1  # a share below it fails the lesion; see the module
COLUMN = "soft_tissue_share"


def _range(parameters):
    setting = (parameters or {}).get("setting") or {}
    return setting.get("resegmentRange"), setting.get("resegmentMode", "absolute"), setting.get("label", 1)


def soft_tissue_counts(image, mask, parameters):
    """(voxels pyradiomics' re-segmentation keeps, voxels of the lesion) for a prepared ``image`` and ``mask``
    (SimpleITK, same grid; the lesion is ``mask`` == the parameter file's label); every voxel is kept when the file
    does not re-segment. ``parameters``: the parameter file as a dict (``FeatureExtractor.parameters``)."""
    bounds, mode, label = _range(parameters)
    inside = sitk.GetArrayViewFromImage(mask) == label
    drawn = int(np.count_nonzero(inside))
    if drawn == 0 or not bounds:
        return drawn, drawn
    values = sitk.GetArrayViewFromImage(image)[inside].astype(float)
    thresholds = sorted(float(v) for v in bounds)
    if mode == "relative":  # a fraction of the lesion's maximum
        thresholds = [values.max() * t for t in thresholds]
    elif mode == "sigma":  # standard deviations from the lesion's mean
        thresholds = [values.mean() + values.std() * t for t in thresholds]
    kept = values >= thresholds[0]
    if len(thresholds) == 2:
        kept &= values <= thresholds[1]
    return int(np.count_nonzero(kept)), drawn


def soft_tissue_share(image, mask, parameters):
    """Kept / drawn voxels of ``soft_tissue_counts``; 1.0 when the file does not re-segment, NaN for an empty
    mask."""
    kept, drawn = soft_tissue_counts(image, mask, parameters)
    return kept / drawn if drawn else float("nan")


def check_kept(lesion_id, kept, drawn, parameters=None):
    """Raise a "mask" CTTimeError when ``kept`` of ``drawn`` voxels is below ``FAIL_THRESHOLD``: the drawing lies
    mostly outside soft tissue."""
    if not drawn or kept / drawn >= FAIL_THRESHOLD:
        return
    bounds = _range(parameters)[0] or (-100, 300)
    raise CTTimeError(
        f"Lesion {lesion_id} keeps {kept:,} of {drawn:,} drawn voxels ({kept / drawn:.1%}, below {FAIL_THRESHOLD:.0%}) "
        f"after CT-TIME's re-segmentation to {bounds[0]:g}..{bounds[-1]:g} HU: the drawing lies mostly outside soft "
        "tissue; is the mask mirrored or from another series? Check that it is the lesion's soft tissue drawn on this "
        "CT.", "mask")


def share_warning(lesion_id, share, parameters=None):
    """The warning of a lesion whose share is below ``SHARE_THRESHOLD``, else ""."""
    try:
        share = float(share)
    except (TypeError, ValueError):
        return ""
    if not share < SHARE_THRESHOLD:  # NaN (not measured) is no warning
        return ""
    bounds = _range(parameters)[0] or (-100, 300)
    return (f"lesion {lesion_id}: soft-tissue share {share:.2f} (< {SHARE_THRESHOLD:g}): only {share:.0%} of its "
            f"voxels lie within {bounds[0]:g}..{bounds[-1]:g} HU (the rest is air, fat or bone); its first-order and "
            "texture features describe that part only - check the segmentation")
