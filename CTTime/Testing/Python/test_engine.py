"""CTTime's engine (scoring/engine) against real pyradiomics: every feature it computes equal to pyradiomics' within
1e-12 relative, and the same CTTimeError where pyradiomics fails, on every sts-ct lesion, the sample data, a
chest-like multi-lesion layout and generated edge cases; its mesh table checked cube by cube; and the scoring path
proven free of pyradiomics (and of scipy and matplotlib) in a process that cannot import it.

pyradiomics runs through CTTime's FeatureExtractor with a parameter file that enables exactly the engine's
features (the fixed file's settings), so that where a feature is NaN both name the same features.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

import hostile_corpus as corpus
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.geometry import lesion_mask
from CTTimeLib.core.resources import DEMO_REFERENCE, PARAMETER_FILE
from CTTimeLib.io.images import read_image
from CTTimeLib.io.segmentations import read_lesions
from CTTimeLib.run import pipeline
from CTTimeLib.run.run_folder import read_lesions_table
from CTTimeLib.scoring.engine import ENGINE_FEATURES, EngineExtractor, mesh
from CTTimeLib.scoring.extraction import TABLE2_FEATURES, FeatureExtractor
from conftest import SAMPLE_CASES, SAMPLE_DATA

TOLERANCE = 1e-12
# what Slicer's requirements.txt installs, with their own dependencies: all the scoring path may import besides
# numpy and SimpleITK
REQUIREMENTS_IMPORTS = {"pandas", "dateutil", "pytz", "tzdata", "six", "yaml", "slicerio", "nrrd",
                        "typing_extensions"}
BENCH_CACHE = Path.home() / ".cache" / "cttime-bench"  # benchmarks/bench_multilesion.py keeps the lung CT here


@pytest.fixture(scope="module")
def engine():
    return EngineExtractor()


@pytest.fixture(scope="module")
def pyradiomics(tmp_path_factory):
    """pyradiomics with the fixed file's settings and exactly the engine's features enabled."""
    parameters = yaml.safe_load(PARAMETER_FILE.read_text())
    enabled = {}
    for name in ENGINE_FEATURES:
        feature_class, feature = name.split("_", 2)[1:]
        enabled.setdefault(feature_class, []).append(feature)
    parameters["featureClass"] = dict(enabled, shape=None)  # the whole shape class
    path = tmp_path_factory.mktemp("engine") / "engine-features.yaml"
    path.write_text(yaml.safe_dump(parameters))
    extractor = FeatureExtractor(path)
    assert sorted(extractor.feature_names) == sorted(ENGINE_FEATURES)
    return extractor


def outcome(extractor, image, mask, lesion_id):
    """(prepared lesion, features or None, CTTimeError message or None)."""
    try:
        prepared = extractor.prepare(image, mask, lesion_id)
        return prepared, extractor.features(prepared), None
    except CTTimeError as exc:
        return None, None, str(exc)


def assert_engine_equals_pyradiomics(engine, pyradiomics, image, mask, lesion_id):
    """The engine's features equal pyradiomics' within 1e-12 relative (or both fail with the same message); where
    both resample, the engine's lesion is pyradiomics' voxel for voxel."""
    ours, features, error = outcome(engine, image, mask, lesion_id)
    theirs, expected, expected_error = outcome(pyradiomics, image, mask, lesion_id)
    assert error == expected_error, lesion_id
    if expected_error is not None:
        return expected_error
    if ours.resampled and theirs.resampled:
        for name in ("GetOrigin", "GetSpacing", "GetDirection"):
            assert getattr(ours.image, name)() == getattr(theirs.image, name)()
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours.image), sitk.GetArrayViewFromImage(theirs.image))
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ours.mask), sitk.GetArrayViewFromImage(theirs.mask))
    assert list(features) == list(ENGINE_FEATURES)
    for name in ENGINE_FEATURES:
        a, b = features[name], expected[name]
        assert a == b or abs(a - b) <= TOLERANCE * max(abs(a), abs(b)), (lesion_id, name, a, b)
    return None


# --- the mesh --------------------------------------------------------------------------------------------------

SPACINGS = [np.array(s) for s in ([1.0, 1.0, 1.0], [1.3, 0.7, 1.1], [3.27, 0.98, 0.98], [0.9, 1.7, 0.6])]


@pytest.mark.parametrize("spacing", SPACINGS, ids=lambda s: "x".join(map(str, s)))
def test_cube_table_is_pyradiomics_mesh_cube_by_cube(spacing):
    from radiomics import cShape

    for config in range(256):
        cube = np.zeros((2, 2, 2), bool)
        for corner in range(8):
            cube[tuple(mesh.CORNERS[corner])] = bool(config >> corner & 1)
        area, volume, _ = cShape.calculate_coefficients(cube, spacing)
        assert mesh.surface_and_volume(cube, spacing) == pytest.approx((area, volume), rel=0, abs=1e-14), config


@pytest.mark.parametrize("seed", range(12))
def test_mesh_volume_area_and_diameters_equal_pyradiomics(seed):
    """Random masks (noise and blobs, holes, several parts), isotropic and anisotropic."""
    from radiomics import cShape

    rng = np.random.default_rng(seed)
    noise = rng.random(tuple(rng.integers(4, 28, size=3)))
    blobs = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(noise), 1.5))
    mask = np.pad((noise if seed % 2 else blobs) > np.median(noise if seed % 2 else blobs), 1)
    spacing = SPACINGS[seed % len(SPACINGS)]
    area, volume, diameters = cShape.calculate_coefficients(mask, spacing)
    assert mesh.surface_and_volume(mask, spacing) == pytest.approx((area, volume), rel=TOLERANCE, abs=0)
    assert mesh.diameters(mask, spacing) == pytest.approx(diameters, rel=TOLERANCE, abs=0)


# --- real lesions ------------------------------------------------------------------------------------------------

def test_engine_equals_pyradiomics_on_the_sample_data(engine, pyradiomics):
    for case in SAMPLE_CASES:
        image = read_image(SAMPLE_DATA / case / "CT_image.nii.gz")
        for lesion in read_lesions(SAMPLE_DATA / case / "CT_mask.nii.gz", image):
            assert assert_engine_equals_pyradiomics(engine, pyradiomics, image, lesion.mask, case) is None


def test_engine_equals_pyradiomics_on_every_sts_lesion(shared_sts, engine, pyradiomics):
    cases = sorted(p for p in shared_sts.iterdir() if (p / "CT_image.nii.gz").exists())
    assert len(cases) == 36
    for folder in cases:
        image = read_image(folder / "CT_image.nii.gz")
        for lesion in read_lesions(folder / "CT_mask.nii.gz", image):
            assert assert_engine_equals_pyradiomics(engine, pyradiomics, image, lesion.mask, folder.name) is None


def chest_like_layout():
    """The benchmark's layout from the sample data, offline: a 512 x 512 int16 CT (STS_008 in air), its tumour and
    nine balls of 4-9 mm radius centred in soft tissue, each its own lesion (they may overlap)."""
    ct = sitk.ReadImage(str(SAMPLE_DATA / "STS_008" / "CT_image.nii.gz"))
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_DATA / "STS_008" / "CT_mask.nii.gz"))) != 0
    values = sitk.GetArrayFromImage(ct)
    low = [(512 - n) // 2 for n in values.shape[1:]]
    big = np.full((values.shape[0], 512, 512), -1000, np.int16)
    region = (slice(None), slice(low[0], low[0] + values.shape[1]), slice(low[1], low[1] + values.shape[2]))
    big[region] = np.round(values).astype(np.int16)
    image = sitk.GetImageFromArray(big)
    image.SetSpacing(ct.GetSpacing())
    image.SetDirection(ct.GetDirection())
    image.SetOrigin(ct.TransformIndexToPhysicalPoint([-low[1], -low[0], 0]))
    masks = [np.zeros(big.shape, bool)]
    masks[0][region] = tumour
    spacing = np.array(ct.GetSpacing())[::-1]
    soft = np.argwhere((big > 0) & (big < 100))
    zz, yy, xx = np.indices(big.shape, sparse=True)
    rng = np.random.default_rng(7)
    for centre in soft[rng.choice(len(soft), 9, replace=False)]:
        radius = rng.uniform(4, 9)
        masks.append((((zz - centre[0]) * spacing[0]) ** 2 + ((yy - centre[1]) * spacing[1]) ** 2
                       + ((xx - centre[2]) * spacing[2]) ** 2) <= radius ** 2)
    return image, masks


def test_engine_equals_pyradiomics_on_a_chest_like_layout(engine, pyradiomics):
    image, masks = chest_like_layout()
    for number, mask in enumerate(masks, start=1):
        assert_engine_equals_pyradiomics(engine, pyradiomics, image, lesion_mask(mask, image), f"lesion_{number}")


def test_engine_equals_pyradiomics_on_the_benchmark_chest_ct(engine, pyradiomics):
    """The 10-lesion 512 x 512 x 61 lung CT of benchmarks/bench_multilesion.py, where that benchmark fetched it."""
    paths = BENCH_CACHE / "lung2_image.nrrd", BENCH_CACHE / "lung2_10lesions.nrrd"
    if not all(path.exists() for path in paths):
        pytest.skip(f"run benchmarks/bench_multilesion.py once to fetch the lung CT into {BENCH_CACHE}")
    image = read_image(paths[0])
    lesions = read_lesions(paths[1], image)
    assert len(lesions) == 10
    for lesion in lesions:
        assert assert_engine_equals_pyradiomics(engine, pyradiomics, image, lesion.mask, lesion.lesion_id) is None


# --- edge cases --------------------------------------------------------------------------------------------------

def _synthetic(shape, spacing, value=40.0, noise=20.0, dtype=np.float32):
    array = (value + noise * np.random.default_rng(0).standard_normal(shape)).astype(dtype)
    array.flat[0] = -1000  # some air, as every CT has
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((-12.5, 30.25, 7.0))
    return image


def _with(image, edit):
    array = sitk.GetArrayFromImage(image)
    edit(array)
    return corpus.like_image(array, image)


def _box(shape, *slices):
    mask = np.zeros(shape, bool)
    mask[slices] = True
    return mask


def edge_cases():
    """{name: (image, mask array on the image grid)}: from the cropped real CT STS_019 and synthetic images."""
    ct, tumour = corpus.ct(), corpus.tumour()
    z, y, x = np.argwhere(tumour).mean(axis=0).astype(int)
    box = [np.flatnonzero(tumour.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    ring = tumour & ~_erode(tumour, 2)
    inner = _erode(tumour, 4)
    flat = _synthetic((12, 40, 40), (0.7, 0.7, 2.5), noise=0.0, dtype=np.int16)
    apart = _with(_synthetic((10, 12, 14), (1.0, 1.0, 1.0), value=-500.0, noise=10.0),
                  lambda a: a.__setitem__((np.array([4, 6]), np.array([5, 8]), np.array([3, 10])), 50))
    line = _with(_synthetic((10, 12, 14), (1.0, 1.0, 1.0), value=-500.0, noise=10.0),
                 lambda a: a.__setitem__((5, 6, slice(4, 7)), 50))
    return {
        "tumour": (ct, tumour),
        "one_slice": (ct, corpus.single_slice()),
        "one_voxel": (ct, corpus.one_voxel()),
        "in_air": (ct, corpus.air_lesion()),
        "border_low": (ct[int(box[2][0]):, int(box[1][0]):, int(box[0][0]):],
                       tumour[box[0][0]:, box[1][0]:, box[2][0]:]),
        "border_high": (ct[:int(box[2][-1]) + 1, :int(box[1][-1]) + 1, :int(box[0][-1]) + 1],
                        tumour[:box[0][-1] + 1, :box[1][-1] + 1, :box[2][-1] + 1]),
        "thin_rod": (ct, _box(tumour.shape, slice(z, z + 2), slice(y, y + 2), slice(x - 15, x + 15))),
        "thin_plate": (ct, _box(tumour.shape, slice(z - 3, z + 4), y, slice(x - 10, x + 10))),
        "line": (ct, _box(tumour.shape, z, y, slice(x - 10, x + 10))),
        "uniform": (_with(ct, lambda a: a.__setitem__(_dilate(tumour, 6), 40.0)), tumour),
        "uniform_int16_everywhere": (flat, _box((12, 40, 40), slice(3, 9), slice(10, 30), slice(12, 28))),
        "holes": (ct, tumour & ~inner),
        "fat_rim_shrinks_the_box": (_with(ct, lambda a: a.__setitem__(
            ring & (np.indices(tumour.shape)[0] >= box[0][-1] - 1), -150.0)), tumour),
        "calcified_half": (_with(ct, lambda a: a.__setitem__(tumour & (np.indices(tumour.shape)[2] > x + 5),
                                                             800.0)), tumour),
        "int16": (sitk.Cast(ct, sitk.sitkInt16), tumour),
        "already_1mm": (_synthetic((24, 30, 32), (1.0, 1.0, 1.0)), _box((24, 30, 32), slice(5, 15), slice(8, 20),
                                                                          slice(6, 25))),
        "nearly_1mm": (_synthetic((24, 30, 32), (1.000001, 1.0, 0.999999)), _box((24, 30, 32), slice(5, 15),
                                                                                   slice(8, 20), slice(6, 25))),
        "resegmented_to_two_voxels_apart": (apart, _box((10, 12, 14), slice(3, 8), slice(4, 10), slice(2, 12))),
        "resegmented_to_a_line": (line, _box((10, 12, 14), slice(3, 8), slice(4, 10), slice(2, 12))),
        "whole_image": (_synthetic((4, 6, 6), (2.0, 2.0, 2.0)), np.ones((4, 6, 6), bool)),
        "tiny": (_synthetic((10, 30, 30), (0.6, 0.6, 3.0)), _box((10, 30, 30), 5, 10, slice(10, 12))),
    }


def _erode(mask, voxels):
    return sitk.GetArrayFromImage(sitk.BinaryErode(sitk.GetImageFromArray(mask.astype(np.uint8)), [voxels] * 3)) > 0


def _dilate(mask, voxels):
    return sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(mask.astype(np.uint8)), [voxels] * 3)) > 0


EXPECTED_FAILURES = {  # where pyradiomics fails, and so must the engine (with pyradiomics' message)
    "one_voxel": "single voxel", "in_air": "retained 0 voxel(s)", "line": "too few dimensions",
    "resegmented_to_two_voxels_apart": "original_glcm_MaximumProbability are NaN",
    "resegmented_to_a_line": "too few dimensions", "whole_image": "No labels found", "tiny": "single voxel"}


@pytest.mark.parametrize("name", sorted(edge_cases()))
def test_engine_equals_pyradiomics_on_edge_cases(name, engine, pyradiomics):
    image, mask = edge_cases()[name]
    error = assert_engine_equals_pyradiomics(engine, pyradiomics, image, lesion_mask(mask, image), name)
    assert (error is None) == (name not in EXPECTED_FAILURES), error
    if error is not None:
        assert EXPECTED_FAILURES[name] in error and f"Lesion {name}" in error


def test_engine_refuses_another_parameter_file_and_masks_off_the_grid(engine, tmp_path):
    changed = tmp_path / "other.yaml"
    changed.write_text(PARAMETER_FILE.read_text().replace("binWidth: 25", "binWidth: 10"))
    with pytest.raises(CTTimeError, match="differs from CTTime's fixed Table-2 file.*install pyradiomics"):
        EngineExtractor(changed)
    image, tumour = corpus.ct(), corpus.tumour()
    with pytest.raises(CTTimeError, match="does not lie on the CT's voxel grid"):
        engine.prepare(image, corpus.shifted_grid(tumour, image), "moved")


# --- runs --------------------------------------------------------------------------------------------------------

def test_signature_run_keeps_every_column_and_builds_a_reference(tmp_path):
    """lesions.csv keeps its 107 feature columns (those the engine does not compute empty); run.json, the
    standardization column and the cache key say which extractor ran; a reference builds from such a table."""
    from CTTimeLib.cli import commands
    from CTTimeLib.run import cache

    manifest = SAMPLE_DATA / "manifest.csv"
    assert commands.main(["cohort", str(manifest), "--standardize", "cohort", "--features", "signature",
                          "--workers", "1", "--out", str(tmp_path / "run")]) == 0
    table = read_lesions_table(tmp_path / "run" / "lesions.csv")
    features = [c for c in table.columns if c.startswith("original_")]
    assert features == list(TABLE2_FEATURES)
    assert table[list(ENGINE_FEATURES)].notna().all().all()
    assert table[[c for c in features if c not in ENGINE_FEATURES]].isna().all().all()
    assert table["standardization"].str.startswith("CTTime engine features, cohort z-score over 3 lesions").all()
    for row in table.to_dict("records"):  # studies ran two at a time in threads: the same as one by one
        case = Path(row["image"]).parent.name
        image = read_image(SAMPLE_DATA / case / "CT_image.nii.gz")
        (lesion,) = read_lesions(SAMPLE_DATA / case / "CT_mask.nii.gz", image)
        expected = EngineExtractor().extract(image, lesion.mask)
        assert [row[name] for name in ENGINE_FEATURES] == pytest.approx(
            [expected[name] for name in ENGINE_FEATURES], rel=1e-15, abs=0)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["features"] == "signature" and record["extractor"].startswith("CTTime engine")
    assert record["pyradiomics_version"] is None and "notes" not in record
    context = cache.run_context(PARAMETER_FILE, pipeline.Options().model_file, EngineExtractor.identity)
    case = pipeline.Case("STS_008", "BS", str(SAMPLE_DATA / "STS_008" / "CT_image.nii.gz"),
                         str(SAMPLE_DATA / "STS_008" / "CT_mask.nii.gz"))
    assert (tmp_path / "run" / "cache" / f"{cache.case_key(case, context)}.json").exists()
    assert commands.main(["reference", "build", str(tmp_path / "run" / "lesions.csv"), "-o",
                          str(tmp_path / "ref.json")]) == 0
    reference = json.loads((tmp_path / "ref.json").read_text())
    assert reference["n_lesions"] == 3 and sorted(reference["features"]) == sorted(ENGINE_FEATURES)


WITHOUT_PYRADIOMICS = """
import importlib.abc, json, sys

class NoPyradiomics(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "radiomics" or name.startswith("radiomics."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoPyradiomics())
from CTTimeLib.cli.commands import main
codes = [main(["score", "--image", image, "--segmentation", mask, "--patient", "P", "--reference", reference,
               "--out", out + features, *(["--features", features] if features else [])])
         for features in ("", "signature")]
installed = {name for name, module in sys.modules.items()  # packages from site-packages (not pip's own hooks)
             if "." not in name and not name.startswith("_")
             and "site-packages" in str(getattr(module, "__file__", None))}
modules = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"codes": codes, "modules": modules, "installed": sorted(installed)}))
"""


def test_scoring_path_imports_no_pyradiomics_and_scores_as_pyradiomics(tmp_path):
    """In a process where pyradiomics cannot be imported, `cttime score` (default features: it falls back to the
    engine and says so once) and `--features signature` score the sample case as the pyradiomics path does
    (within 1e-12), importing neither pyradiomics nor scipy nor matplotlib."""
    image, mask = (str(SAMPLE_DATA / "STS_019" / name) for name in ("CT_image.nii.gz", "CT_mask.nii.gz"))
    code = f"image, mask, reference, out = {image!r}, {mask!r}, {str(DEMO_REFERENCE)!r}, {str(tmp_path / 'out')!r}"
    done = subprocess.run([sys.executable, "-c", code + WITHOUT_PYRADIOMICS], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0]
    assert not {"radiomics", "scipy", "matplotlib"} & set(report["modules"])
    assert {"numpy", "SimpleITK", "pandas"} <= set(report["installed"]) <= {"numpy", "SimpleITK",
                                                                           *REQUIREMENTS_IMPORTS}, report["installed"]
    assert done.stderr.count("NOTE: pyradiomics cannot be imported") == 1
    expected = pipeline.run([pipeline.Case("P", "BS", image, mask)], tmp_path / "pyradiomics",
                            pipeline.Options(standardize=str(DEMO_REFERENCE))).lesions
    for run, notes in (("out", 1), ("outsignature", 0)):
        record = json.loads((tmp_path / run / "run.json").read_text())
        assert record["extractor"].startswith("CTTime engine") and len(record.get("notes", [])) == notes
        lesions = read_lesions_table(tmp_path / run / "lesions.csv")
        np.testing.assert_allclose(lesions["ct_time_score"], expected["ct_time_score"], rtol=1e-12, atol=0)
        np.testing.assert_allclose(lesions[list(ENGINE_FEATURES)].to_numpy(float),
                                   expected[list(ENGINE_FEATURES)].to_numpy(float), rtol=1e-12, atol=0)
