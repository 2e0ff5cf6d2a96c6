"""The soft-tissue share (voxels kept by CT-TIME's -100..300 HU re-segmentation / voxels drawn) of real lesions and
of masks that miss their lesion: the figures behind ``scoring.soft_tissue``'s thresholds (docs/bad-inputs.md).

Cases: the 36 soft-tissue sarcomas of ``../shared/data/sts-ct``; the two lung tumours of pyradiomics' test data
(``lung1``, ``lung2``, fetched as in ``bench_multilesion.py``); each of them mirrored left-right on its CT (the
sarcoma masks then lie over the other thigh's muscle, fat or the air beside it; the lung masks over aerated lung);
each lung tumour drawn with a 2 mm and a 5 mm rim of the lung around it (grown in-plane: a sloppy drawing).
Counted on the grid the features see (the prepared, 1 mm resampled image and mask), as the run counts them.

    PYTHONPATH=CTTime python benchmarks/measure_soft_tissue.py [--sarcomas N] [--cache DIR]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CTTime"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_multilesion import SHARED_STS, lung_data  # noqa: E402

from CTTimeLib.core.geometry import whole_mask  # noqa: E402
from CTTimeLib.io.images import read_image  # noqa: E402
from CTTimeLib.io.segmentations import read_lesions  # noqa: E402
from CTTimeLib.scoring.extractors import extractor_for  # noqa: E402
from CTTimeLib.scoring.soft_tissue import FAIL_THRESHOLD, SHARE_THRESHOLD, soft_tissue_counts  # noqa: E402


def mirrored(mask):
    """The mask flipped left-right (the image's first axis) on the same grid."""
    array = sitk.GetArrayFromImage(mask)[:, :, ::-1].copy()
    flipped = sitk.GetImageFromArray(array)
    flipped.CopyInformation(mask)
    return flipped


def dilated(mask, millimetres):
    """The mask grown by ``millimetres`` in-plane: a lesion drawn with a rim of what surrounds it."""
    radius = [max(1, round(millimetres / spacing)) for spacing in mask.GetSpacing()[:2]] + [0]
    return sitk.BinaryDilate(mask != 0, radius)


def measure(extractor, image, mask):
    prepared = extractor.prepare(image, mask)
    return soft_tissue_counts(prepared.image, prepared.mask, extractor.parameters)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sarcomas", type=int, default=36, help="how many sarcomas (default all 36)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench",
                        help="folder for the lung data (default ~/.cache/cttime-bench)")
    args = parser.parse_args()
    extractor = extractor_for("signature")
    cases = []
    for folder in sorted(SHARED_STS.glob("STS_*"))[:args.sarcomas]:
        cases.append(("sarcoma", folder.name, folder / "CT_image.nii.gz", folder / "CT_mask.nii.gz"))
    for name in ("lung1", "lung2"):
        image_path, label_path = lung_data(args.cache, name)
        cases.append(("lung", name, image_path, label_path))
    shares = {}
    for group, name, image_path, mask_path in cases:
        image = read_image(image_path)
        mask = whole_mask(read_lesions(mask_path, image)[0].mask, image)
        spacing = image.GetSpacing()[2]
        variants = [("drawn", mask), ("mirrored", mirrored(mask))]
        if group == "lung":
            variants += [(f"rim {mm} mm", dilated(mask, mm)) for mm in (2, 5)]
        for variant, drawn_mask in variants:
            kept, drawn = measure(extractor, image, drawn_mask)
            share = kept / drawn if drawn else float("nan")
            shares.setdefault((group, variant), []).append(share)
            print(f"{group:8} {name:8} {variant:9} slices {spacing:4.1f} mm  kept {kept:>9,} of {drawn:>9,}  "
                  f"share {share:.4f}", flush=True)
    print(f"\nthresholds: fail below {FAIL_THRESHOLD:g}, warn below {SHARE_THRESHOLD:g}")
    for (group, variant), values in shares.items():
        print(f"{group:8} {variant:9} n={len(values):2}  share {np.nanmin(values):.4f} .. {np.nanmax(values):.4f}")


if __name__ == "__main__":
    main()
