"""Cohort batch mode on real CTs: parallel and Dask runs equal a sequential run, kill -9 and resume, the result
cache, progress events, failures and exit codes, manifest checks, DICOM series + SEG / RTSTRUCT, acquisition check."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import REPO, SAMPLE_DATA, SAMPLE_CASES
from dicom_fixtures import write_ct_series, write_rtstruct, write_seg

from CTTimeLib.cli import commands
from CTTimeLib.core import geometry
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import DEMO_REFERENCE, MODEL_FILE, PARAMETER_FILE
from CTTimeLib.io import images, segmentations
from CTTimeLib.run.summary import EXIT_USAGE
from CTTimeLib.run import cache, pipeline
from CTTimeLib.run.manifest import read_manifest
from CTTimeLib.scoring.engine import EngineExtractor
from CTTimeLib.scoring.extraction import FeatureExtractor

CTTIME = [sys.executable, "-m", "CTTimeLib.cli"]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "CTTime"))


def _write_manifest(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _split_mask(mask_path, out_path, parts, extra_voxel=False):
    """A labelmap of a real tumour cut into ``parts`` slabs along z (labels 1..parts), optionally with one
    single-voxel label that pyradiomics cannot use."""
    mask = sitk.ReadImage(str(mask_path))
    values = sitk.GetArrayFromImage(mask) > 0
    slices = np.flatnonzero(values.any(axis=(1, 2)))
    labels = np.zeros(values.shape, np.uint8)
    for label, chunk in enumerate(np.array_split(slices, parts), start=1):
        labels[chunk] = np.where(values[chunk], label, labels[chunk])
    if extra_voxel:
        labels[0, 0, 0] = parts + 1
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(mask)
    sitk.WriteImage(out, str(out_path))
    return out_path


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """The sample cases plus a follow-up whose labelmap has two real lesions and one lesion that fails."""
    folder = tmp_path_factory.mktemp("cohort")
    rows = [dict(patient_id=name, timepoint="BS", image=SAMPLE_DATA / name / "CT_image.nii.gz",
                 segmentation=SAMPLE_DATA / name / "CT_mask.nii.gz", batch="A", locations="", labels="")
            for name in SAMPLE_CASES]
    labels = _split_mask(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz", folder / "STS_019_FU.nii.gz", 2, True)
    rows.append(dict(patient_id="STS_019", timepoint="FU", image=SAMPLE_DATA / "STS_019" / "CT_image.nii.gz",
                     segmentation=labels, batch="B", locations="LU_1=liver", labels="1=LU_1;2=LU_2;3=tiny_3"))
    return _write_manifest(folder / "manifest.csv", rows)


@pytest.fixture(scope="module")
def sequential(cohort, tmp_path_factory):
    """`cttime cohort` run as a user would, one worker, JSON-lines events on standard output."""
    out = tmp_path_factory.mktemp("sequential")
    done = subprocess.run(CTTIME + ["cohort", str(cohort), "--standardize", "cohort", "--out", str(out),
                                    "--workers", "1", "--log-json"], capture_output=True, text=True, env=ENV,
                          timeout=300)
    return out, done


def test_cli_run_reports_failures_by_kind_and_exits_3(sequential):
    out, done = sequential
    assert done.returncode == 3, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["start"] + ["case"] * 4 + ["summary"]
    summary = events[-1]
    assert (summary["lesions"], summary["ok"], summary["failed"]) == (6, 5, 1)
    assert summary["failed_by_kind"] == {"mask": 1}
    assert "1 mask" in done.stderr and "FAILED STS_019 FU tiny_3" in done.stderr
    lesions = pd.read_csv(out / "lesions.csv", keep_default_na=False)
    failed = lesions[lesions["error"] != ""]
    assert list(failed["lesion_id"]) == ["tiny_3"] and list(failed["error_kind"]) == ["mask"]
    follow_up = lesions[lesions["timepoint"] == "FU"].set_index("lesion_id")
    assert follow_up.loc["LU_1", "location"] == "liver" and follow_up.loc["LU_2", "location"] == "lung"
    assert list(lesions["batch"]) == ["A", "A", "A", "B", "B", "B"]
    assert json.loads((out / "run.json").read_text())["summary"]["failed_by_kind"] == {"mask": 1}


def test_local_processes_give_identical_results(cohort, sequential, tmp_path):
    result = pipeline.run(read_manifest(cohort), tmp_path, pipeline.Options(workers=2, cache=False))
    assert result.summary["studies_from_cache"] == 0 and not (tmp_path / "cache").exists()
    assert (tmp_path / "lesions.csv").read_bytes() == (sequential[0] / "lesions.csv").read_bytes()
    assert (tmp_path / "patients.csv").read_bytes() == (sequential[0] / "patients.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.glob("*.seg.nrrd")) == sorted(
        p.name for p in sequential[0].glob("*.seg.nrrd"))


def test_dask_cluster_gives_identical_results(cohort, sequential, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        events = []
        pipeline.run(read_manifest(cohort), tmp_path, pipeline.Options(scheduler=cluster.scheduler_address,
                                                                       cache=False), events=events.append)
    assert events[0]["scheduler"].startswith("tcp://127.0.0.1:")
    assert (tmp_path / "lesions.csv").read_bytes() == (sequential[0] / "lesions.csv").read_bytes()


def test_unreachable_scheduler_is_a_usage_error(cohort, tmp_path, capsys):
    code = commands.main(["cohort", str(cohort), "--standardize", "cohort", "--out", str(tmp_path), "--quiet",
                          "--scheduler", "tcp://127.0.0.1:9"])
    assert code == EXIT_USAGE and "Dask scheduler" in capsys.readouterr().err


def test_kill_9_midway_then_resume_equals_a_clean_run(tmp_path, shared_sts):
    names = ["STS_024", "STS_042", "STS_008"]
    rows = [dict(patient_id=name, timepoint="BS", image=shared_sts / name / "CT_image.nii.gz",
                 segmentation=_split_mask(shared_sts / name / "CT_mask.nii.gz", tmp_path / f"{name}.nii.gz", 3))
            for name in names]
    manifest = _write_manifest(tmp_path / "manifest.csv", rows)
    out = tmp_path / "out"
    command = CTTIME + ["cohort", str(manifest), "--standardize", "cohort", "--out", str(out), "--workers", "2",
                        "--quiet"]
    run = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((out / "cache").glob("**/*.json")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the run and its worker processes, as a crash would
    run.wait()
    kept = list((out / "cache").glob("**/*.json"))
    assert kept, "the killed run kept no finished lesion"
    assert not (out / "lesions.csv").exists() and not (out / "patients.csv").exists()
    assert all(json.loads(p.read_text()) for p in kept)  # complete JSON: written atomically

    resumed = subprocess.run(command + ["--log-json", str(tmp_path / "events.jsonl")], env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    clean = pipeline.run(read_manifest(manifest), tmp_path / "clean", pipeline.Options(cache=False))
    assert (out / "lesions.csv").read_bytes() == (tmp_path / "clean" / "lesions.csv").read_bytes()
    assert len(clean.lesions) == 9 and clean.n_failed == 0
    assert not list(out.glob("*.part")) and not list((out / "cache").glob("*.partial"))

    again = pipeline.run(read_manifest(manifest), out, pipeline.Options(workers=1))
    assert again.summary["studies_from_cache"] == 3
    assert (out / "lesions.csv").read_bytes() == (tmp_path / "clean" / "lesions.csv").read_bytes()


def test_cache_key_follows_content_of_inputs_parameters_model_and_extractor(tmp_path):
    case = pipeline.Case("STS_019", "BS", str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"),
                         str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"))
    version = FeatureExtractor().identity
    base = cache.case_key(case, cache.run_context(PARAMETER_FILE, MODEL_FILE, version))
    copy = tmp_path / "copy.nii.gz"
    copy.write_bytes(open(case.image, "rb").read())
    moved = pipeline.Case("other", "FU", str(copy), case.segmentation)
    assert cache.case_key(moved, cache.run_context(PARAMETER_FILE, MODEL_FILE, version)) == base
    parameters = tmp_path / "params.yaml"
    parameters.write_text(PARAMETER_FILE.read_text() + "\n# binWidth unchanged, file changed\n")
    model_file = tmp_path / "model.json"
    model_file.write_text(MODEL_FILE.read_text() + "\n")
    assert cache.case_key(case, cache.run_context(parameters, MODEL_FILE, version)) != base
    assert cache.case_key(case, cache.run_context(PARAMETER_FILE, model_file, version)) != base
    assert cache.case_key(pipeline.Case("STS_019", "BS", case.image, case.segmentation, locations={"x": "lung"}),
                          cache.run_context(PARAMETER_FILE, MODEL_FILE, version)) != base
    assert cache.case_key(case, cache.run_context(PARAMETER_FILE, MODEL_FILE, EngineExtractor.identity)) != base


def test_manifest_problems_are_reported_together(tmp_path, capsys):
    import slicerio

    image = SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"
    segmentation = slicerio.create_segmentation((4, 4, 4), np.eye(4))
    for _ in range(2):
        slicerio.add_segment(segmentation, np.ones((4, 4, 4), bool), {"name": "LU_1", "color": [1, 0, 0]})
    twice = tmp_path / "twice.seg.nrrd"
    slicerio.write_segmentation(str(twice), segmentation)
    mask = SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"
    manifest = _write_manifest(tmp_path / "manifest.csv", [
        dict(patient_id="P1", timepoint="BS", image=image, segmentation=mask, locations="LU_1=brain", labels=""),
        dict(patient_id="P1", timepoint="BS", image=image, segmentation=mask, locations="", labels="x=LU_1"),
        dict(patient_id="P2", timepoint="BS", image=tmp_path / "absent.nii.gz", segmentation=twice, locations="",
             labels="1=A;2=A"),
        dict(patient_id="P3", timepoint="", image=image, segmentation=mask, locations="LU_1=lung;LU_1=liver",
             labels="")])
    with pytest.raises(CTTimeError) as error:
        read_manifest(manifest)
    text = str(error.value)
    for expected in ("line 2: Lesion LU_1: unknown location 'brain'", "line 3: patient P1 at time point BS is listed "
                     "again", "line 3: labels expects LABEL_VALUE=LESION_ID", "line 4: image not found",
                     "line 4: labels gives two label values the same lesion ID", "several segments named LU_1",
                     "line 5: empty timepoint", "line 5: locations names 'LU_1' twice",
                     "line 4: labels name labelmap values, but segmentation"):
        assert expected in text
    assert text.count("\n  ") == 9
    assert commands.main(["cohort", str(manifest), "--standardize", "cohort", "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "bad.csv").write_text("patient,image\nP1,x.nii.gz\n")
    assert commands.main(["cohort", str(tmp_path / "bad.csv"), "--standardize", "cohort", "--out", str(tmp_path)]) == 2
    assert "timepoint, segmentation" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dicom_study(tmp_path_factory):
    """STS_019 as a CT series (100 kVp, sharp kernel, no contrast recorded) with a DICOM SEG and an RTSTRUCT."""
    folder = tmp_path_factory.mktemp("dicom")
    image = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"))
    mask = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"))
    datasets = write_ct_series(image, folder / "ct", kvp=100, kernel="B70f", contrast=None)
    (folder / "seg").mkdir()
    write_seg(datasets, {"liver_1": sitk.GetArrayFromImage(mask)}, folder / "seg" / "seg.dcm")
    return folder, image, mask, datasets


def test_dicom_series_and_seg_give_pyradiomics_features_and_acquisition_flags(dicom_study, tmp_path):
    folder, image, mask, _ = dicom_study
    manifest = _write_manifest(tmp_path / "manifest.csv", [dict(
        patient_id="STS_019", timepoint="BS", image=folder / "ct", segmentation=folder / "seg", batch="siemens")])
    result = pipeline.run(read_manifest(manifest), tmp_path / "out",
                          pipeline.Options(standardize=str(DEMO_REFERENCE)))
    row = result.lesions.iloc[0]
    assert row["lesion_id"] == "liver_1" and row["location"] == "liver" and row["error"] == ""
    # the series stores whole HU as 16-bit integers: pyradiomics on the same voxels as int16 is the reference
    expected = FeatureExtractor().extract(sitk.Cast(image, sitk.sitkInt16), mask)
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert (row["kvp"], row["convolution_kernel"], row["batch"]) == (100.0, "B70f", "siemens")
    assert pd.isna(row["contrast_agent"])
    assert row["slice_thickness_mm"] == pytest.approx(3.27)
    for flag in ("100 kVp", "sharp kernel B70f", "slice thickness 3.27 mm", "contrast not recorded"):
        assert flag in row["acquisition_warning"]
    flagged = json.loads((tmp_path / "out" / "run.json").read_text())["summary"]["studies_outside_training_domain"]
    assert len(flagged) == 1 and flagged[0].startswith("STS_019 BS: 100 kVp")
    # the lesion's warning cell carries it beside the demo reference's, and so does the tumour board's banner
    assert "outside CT-TIME's training domain (scores less certain): 100 kVp" in row["warning"]
    assert "NOT CLINICALLY CALIBRATED: demo reference" in row["warning"]
    from CTTimeLib.figures import tumour_board

    lesions = tumour_board.read_table(tmp_path / "out" / "lesions.csv", "lesions")
    image_read, masks, _ = tumour_board.load_case(tmp_path / "out", lesions)
    board = tumour_board.board_figure("STS_019", "BS", lesions, None, image_read, masks)
    assert any(w.startswith("outside CT-TIME's training domain (scores less certain): 100 kVp")
               for w in board.warnings)


def test_in_domain_acquisition_is_not_flagged(tmp_path):
    image = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"))
    image.SetSpacing(image.GetSpacing()[:2] + (2.5,))
    write_ct_series(image, tmp_path / "ct", kvp=120, kernel="STANDARD", contrast="Omnipaque 350")
    from CTTimeLib.scoring import acquisition

    described = acquisition.describe(tmp_path / "ct")
    assert described["acquisition_warning"] == "" and described["slice_thickness_mm"] == 2.5
    assert acquisition.describe(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz") == {}
    assert [acquisition.kernel_is_sharp(k) for k in ("B30f", "Br36", "I70f", "LUNG", "BONEPLUS", "SOFT")] == [
        False, False, True, True, True, False]


def test_rtstruct_contours_are_filled_with_holes(dicom_study, tmp_path):
    folder, _, _, datasets = dicom_study
    image = images.read_image(folder / "ct")

    def box(k, i0, i1, j0, j1):  # a contour half a voxel outside voxel centres i0..i1, j0..j1 of slice k
        corners = [(i0 - .5, j0 - .5), (i1 + .5, j0 - .5), (i1 + .5, j1 + .5), (i0 - .5, j1 + .5)]
        return np.array([image.TransformContinuousIndexToPhysicalPoint((i, j, float(k))) for i, j in corners])

    contours = {"LU_1": [box(k, 50, 70, 40, 60) for k in range(20, 25)] + [box(22, 55, 60, 45, 50)],
                "bone_2": [box(10, 5, 6, 5, 6)]}
    path = write_rtstruct(datasets, contours, tmp_path / "rt.dcm")
    lesions = segmentations.read_lesions(path, image)
    assert [(l.lesion_id, l.location) for l in lesions] == [("LU_1", "lung"), ("bone_2", "bone")]
    lung = sitk.GetArrayFromImage(geometry.whole_mask(lesions[0].mask, image))
    expected = np.zeros_like(lung)
    expected[20:25, 40:61, 50:71] = 1
    expected[22, 45:51, 55:61] = 0
    assert np.array_equal(lung, expected)
    assert int(sitk.GetArrayFromImage(lesions[1].mask).sum()) == 4 and lesions[1].mask.GetSize() == (2, 2, 1)


def test_cancel_stops_between_lesions_and_keeps_what_is_done(tmp_path):
    from CTTimeLib.core.errors import Cancelled

    cases = [pipeline.Case(n, "BS", str(SAMPLE_DATA / n / "CT_image.nii.gz"), str(SAMPLE_DATA / n / "CT_mask.nii.gz"))
             for n in SAMPLE_CASES]
    seen = []
    with pytest.raises(Cancelled):
        pipeline.run(cases, tmp_path, pipeline.Options(), progress=lambda done, total, message: seen.append(done),
                     cancelled=lambda: len(seen) >= 1)
    assert seen == [1] and len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert not (tmp_path / "lesions.csv").exists()
    assert pipeline.run(cases, tmp_path, pipeline.Options()).summary["studies_from_cache"] == 1


def test_progress_bar_and_json_lines_render_the_events(tmp_path):
    import io

    from CTTimeLib.run import progress

    bar, lines, log = io.StringIO(), io.StringIO(), io.StringIO()
    report = progress.combine(progress.ProgressBar(bar), progress.Lines(lines), progress.JsonLines(log), None)
    report({"event": "start", "cases": 2, "workers": 2, "scheduler": None})
    for done, cached in ((1, False), (2, True)):
        report({"event": "case", "done": done, "total": 2, "patient_id": f"P{done}", "timepoint": "BS",
                "lesions": 3, "failed": done - 1, "cached": cached, "seconds": 1.0})
    report({"event": "summary", "lesions": 6, "ok": 5, "failed": 1, "failed_by_kind": {"mask": 1}})
    assert "2/2" in bar.getvalue() and "6 lesions" in bar.getvalue() and "1 studies from cache" in bar.getvalue()
    assert lines.getvalue().splitlines()[1] == "  [2/2] P2 BS: 3 lesion(s), 1 failed (cache)"
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["start", "case", "case", "summary"] and all("time" in e for e in events)


def test_prefetch_keeps_order_overlaps_and_cancels_on_close():
    import time

    from CTTimeLib.run import execution

    started = []

    def work(item):
        started.append(item)
        time.sleep(0.05)
        return item * 10

    futures = execution.prefetch(work, range(6))
    assert next(futures).result() == 0
    deadline = time.monotonic() + 2.0
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert started == [0, 1]  # item 1 started before the caller asked for it: it overlaps the caller's work
    assert next(futures).result() == 10
    futures.close()  # the caller stops (cancel): items not yet started never run
    assert started in ([0, 1], [0, 1, 2])
    assert [f.result() for f in execution.prefetch(work, range(3))] == [0, 10, 20]
    started.clear()
    futures = execution.prefetch(work, range(6), threads=2)
    assert next(futures).result() == 0
    deadline = time.monotonic() + 2.0
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sorted(started) == [0, 1, 2]  # two items ahead of the caller
    assert [f.result() for f in futures] == [10, 20, 30, 40, 50]
