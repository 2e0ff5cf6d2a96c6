"""A result is never lost or corrupted: hostile names, damaged caches, dead workers, signals, full or read-only
disks, oversized and endless inputs, file modes, and every user error of every subcommand.

Real files and real processes throughout: the cropped real CT of hostile_corpus scored by real pyradiomics, real
worker processes killed with SIGKILL, a real `cttime` process sent SIGTERM, a real read-only bind mount and a real
full tmpfs (made in a private mount namespace with `unshare`; skipped with a message where the sandbox forbids it).
docs/bad-inputs.md lists the same cases.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

import hostile_corpus as corpus
from conftest import REPO, SAMPLE_CASES, SAMPLE_DATA, folder_locked
from test_hostile_inputs import _utf8_names, cttime
from CTTimeLib.run.run_folder import read_lesions_table
from CTTimeLib.core import files, text
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import DEMO_REFERENCE, MODEL_FILE, PARAMETER_FILE
from CTTimeLib.io import tables
from CTTimeLib.run import cache, execution, pipeline, run_folder
from CTTimeLib.run.manifest import read_manifest
from CTTimeLib.scoring.extraction import FeatureExtractor

PYTHON = [sys.executable, "-m", "CTTimeLib.cli"]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "CTTime"))
REFERENCE = ("--reference", DEMO_REFERENCE)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The cropped real CT, its two good lesions, and one-lesion segmentations of each (three studies that differ
    in content, so each is extracted and cached on its own)."""
    folder, ct = corpus.write_basic(tmp_path_factory.mktemp("integrity"))
    for name, mask in corpus.good_lesions().items():
        corpus.write_seg(folder / f"{name}.seg.nrrd", {name: mask}, ct)
    return folder, ct


def manifest(path, image, rows, **columns):
    """A manifest CSV of (patient, time point, segmentation) rows on one image, with extra columns."""
    frame = pd.DataFrame([dict(patient_id=p, timepoint=t, image=image, segmentation=s) for p, t, s in rows])
    for name, values in columns.items():
        frame[name] = values
    frame.to_csv(path, index=False)
    return path


def three_studies(folder, path):
    return manifest(path, folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd"), ("B", "BS", folder /
                                                                                       "tumour.seg.nrrd"),
                                               ("C", "BS", folder / "tumour_top.seg.nrrd")])


def clean_run(manifest_path, out):
    """The lesions.csv bytes of a run without cache, in this process."""
    pipeline.run(read_manifest(manifest_path), out, pipeline.Options(standardize=str(DEMO_REFERENCE), cache=False))
    return (Path(out) / "lesions.csv").read_bytes()


def no_traceback(done):
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def run_cli(*argv, timeout=300, **kwargs):
    """The real `cttime` command in a process of its own."""
    return no_traceback(subprocess.run(PYTHON + [str(a) for a in argv], capture_output=True, text=True,
                                       timeout=timeout, env=kwargs.pop("env", ENV), **kwargs))


# ---- identity and text: IDs come back byte for byte, formula cells are neutralised ---------------------------

NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
TRICKY = ["NA", "null", "None", "nan", "1.0", "007", "TRUE", "#N/A", "-5", "=1+2", "+A1", "-2+3", "@SUM(A1)",
          "'quoted", "''", "=HYPERLINK(\"http://x\",\"y\")", " spaced ", "\u00a0nbsp", "Läsion 肺"]


@pytest.fixture(scope="module")
def tricky_run(data, tmp_path_factory):
    """A cohort whose patient, time-point and lesion IDs are what pandas and spreadsheets like to change."""
    folder, ct = data
    tmp = tmp_path_factory.mktemp("tricky")
    top = corpus.good_lesions()["tumour_top"]
    seg = corpus.write_seg(tmp / "tricky.seg.nrrd", {f"placeholder{i}": top for i in range(len(TRICKY))}, ct)
    _utf8_names(seg, TRICKY)
    patients = ["NA", "007", "=1+2", "1.0", "None", "@x", "-5"]
    timepoints = ["BS", "null", "+FU", "nan", "BS", "BS", "FU"]
    rows = [(p, t, seg if i == 0 else folder / "good.seg.nrrd") for i, (p, t) in enumerate(zip(patients, timepoints))]
    path = manifest(tmp / "m.csv", folder / "ct.nrrd", rows,
                    batch=["=cmd|' /C calc'!A0", "01", "-1", "", "NA", "+", "x"])
    code, out, err = cttime("cohort", path, "--out", tmp / "out", "--workers", "1", *REFERENCE)
    assert code == 0, err
    return tmp, patients, timepoints


def test_ids_survive_every_table_byte_for_byte(tricky_run):
    tmp, patients, timepoints = tricky_run
    table = read_lesions_table(tmp / "out" / "lesions.csv")
    first = table[table["patient_id"] == "NA"]
    assert list(first["lesion_id"]) == TRICKY and set(first["timepoint"]) == {"BS"}
    assert list(dict.fromkeys(zip(table["patient_id"], table["timepoint"]))) == list(zip(patients, timepoints))
    assert list(table.drop_duplicates("patient_id")["batch"]) == ["=cmd|' /C calc'!A0", "01", "-1", "", "NA", "+",
                                                                  "x"]
    patients_table = tables.read_csv(tmp / "out" / "patients.csv", "Patients table", strip=False)
    assert list(zip(patients_table["patient_id"], patients_table["timepoint"])) == list(zip(patients, timepoints))


def test_no_csv_cell_starts_a_formula(tricky_run):
    tmp, _, _ = tricky_run
    cells = {}
    for name in ("lesions.csv", "patients.csv"):
        with open(tmp / "out" / name, newline="", encoding="utf-8") as handle:
            cells[name] = {cell for row in csv.reader(handle) for cell in row}
        risky = [c for c in cells[name] if c[:1] in text.FORMULA_START and not re.fullmatch(NUMBER, c)]
        assert risky == [], (name, risky[:5])
        assert {"'=1+2", "-5", "'+FU", "'@x"} <= cells[name]  # neutralised patient and time-point IDs; a number
    assert {"'@SUM(A1)", "''quoted", "\'\'\'", "'=cmd|' /C calc'!A0", "'-2+3"} <= cells["lesions.csv"]


def test_rescore_of_a_runs_own_table_keeps_ids_and_scores(tricky_run):
    tmp, _, _ = tricky_run
    code, _, err = cttime("rescore", tmp / "out" / "lesions.csv", "--out", tmp / "rescored", *REFERENCE)
    assert code == 0, err
    before, after = (read_lesions_table(tmp / folder / "lesions.csv") for folder in ("out", "rescored"))
    for column in ("patient_id", "timepoint", "lesion_id", "batch"):
        assert list(after[column]) == list(before[column])
    assert list(after["ct_time_score"]) == list(before["ct_time_score"])


def test_boards_of_tricky_ids_are_found_through_the_run_folder_names(tricky_run):
    tmp, patients, timepoints = tricky_run
    code, _, err = cttime("board", tmp / "out")
    assert code == 0, err
    for patient, timepoint in zip(patients, timepoints):
        assert run_folder.board_path(tmp / "out", patient, timepoint).is_file()
        assert run_folder.segmentation_path(tmp / "out", patient, timepoint).is_file()


_NAME_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_NAME_TEXT, _NAME_TEXT, st.one_of(_NAME_TEXT, st.floats(allow_nan=False))),
                min_size=1, max_size=5))
def test_any_text_without_control_characters_round_trips_through_a_table(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("roundtrip") / "t.csv"
    frame = pd.DataFrame(rows, columns=["patient_id", "lesion_id", "value"])
    files.write_table(frame, path)
    back = tables.read_csv(path, "Table", text=("patient_id", "lesion_id"), strip=False)
    assert list(back["patient_id"]) == list(frame["patient_id"])
    assert list(back["lesion_id"]) == list(frame["lesion_id"])
    for cell in frame["patient_id"]:
        assert text.csv_value(text.csv_cell(cell)) == cell


@pytest.mark.parametrize("name", ["tu\rmour", "esc\x1bape", "tab\tbed", "line\u2028sep", "nul\x00"])
def test_control_characters_in_a_segment_name_are_refused(name, data, tmp_path):
    folder, ct = data
    seg = corpus.write_seg(tmp_path / "ctrl.seg.nrrd", {"placeholder0": corpus.tumour()}, ct)
    _utf8_names(seg, [name])
    code, _, err = cttime("score", "--image", folder / "ct.nrrd", "--segmentation", seg, "--patient", "P",
                          "--out", tmp_path / "out", *REFERENCE)
    assert code == 2 and "control character" in err and "rename it" in err, err
    assert not (tmp_path / "out" / "lesions.csv").exists()
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", [("P", "BS", seg)])
    code, _, err = cttime("cohort", path, "--out", tmp_path / "cohort", *REFERENCE)
    assert code == 2 and "line 2: segmentation" in err and "control character" in err
    assert not (tmp_path / "cohort").exists()  # refused before extraction


def test_a_line_break_in_a_segment_name_is_named_as_such(data, tmp_path):
    """The NRRD header is line-based: the name ends the line and its rest is a line that is no field. The message
    says that, not that the file is unreadable."""
    folder, ct = data
    seg = corpus.write_seg(tmp_path / "nl.seg.nrrd", {"placeholder0": corpus.tumour()}, ct)
    _utf8_names(seg, ["new\nline"])
    code, _, err = cttime("score", "--image", folder / "ct.nrrd", "--segmentation", seg, "--patient", "P",
                          "--out", tmp_path / "out", *REFERENCE)
    assert code == 2 and f"Segmentation {seg}: the name of segment 0 holds a line break ('new', then 'line' on a " \
        "line of its own)" in err and "Rename the segment on one line" in err, err
    assert "Cannot read segmentation" not in err


def test_control_characters_in_ids_and_tables_are_refused(data, tmp_path):
    folder, _ = data
    (tmp_path / "m.csv").write_text(f'patient_id,timepoint,image,segmentation,note\n"P\r1",BS,{folder / "ct.nrrd"},'
                                    f'{folder / "good.seg.nrrd"},"a\x1bb"\n', encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", *REFERENCE)
    assert code == 2 and "has 2 problem(s)" in err and "line 2: note 'a\\x1bb' holds the control" in err
    assert "has 2 problem(s)" in err and "line 2: patient_id 'P\\r1' holds the control" in err
    (tmp_path / "m.csv").write_text(f'patient_id,timepoint,image,segmentation,note\nP,BS,{folder / "ct.nrrd"},'
                                    f'{folder / "good.seg.nrrd"},"a\x00b"\n', encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", *REFERENCE)
    assert code == 2 and "m.csv holds a NUL byte (line 2)" in err  # pandas would cut the cell at it
    code, _, err = cttime("score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd",
                          "--patient", "P\n1", "--out", tmp_path / "out", *REFERENCE)
    assert code == 2 and "patient ID 'P\\n1' holds the control character(s) \\n" in err
    table = tmp_path / "t.csv"
    table.write_text('patient_id,timepoint,lesion_id\nP,BS,"a\x1bb"\n', encoding="utf-8")
    code, _, err = cttime("rescore", table, "--out", tmp_path / "r", *REFERENCE)
    assert code == 2 and "control characters" in err


# ---- file names: unique per study, never reused ------------------------------------------------------------------

def test_studies_whose_safe_names_collide_get_files_of_their_own(data, tmp_path):
    folder, ct = data
    ids = [("P/1", "BS"), ("P_1", "BS"), ("P", "1_BS"), ("Pä", "BS"), ("Pa", "BS"), ("X" * 85 + "1", "BS"),
           ("X" * 85 + "2", "BS")]
    rows = []
    for number, (patient, timepoint) in enumerate(ids):
        rows.append((patient, timepoint, corpus.write_seg(tmp_path / f"s{number}.seg.nrrd",
                                                          {f"lesion_of_{number}": corpus.tumour()}, ct)))
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", rows)
    code, _, err = cttime("cohort", path, "--out", tmp_path / "out", "--workers", "1", *REFERENCE)
    assert code == 0, err
    import slicerio

    names = {run_folder.study_key(p, t) for p, t in ids}
    assert len(names) == len(ids)
    assert len(list((tmp_path / "out").glob("*_cttime.seg.nrrd"))) == len(ids)
    for number, (patient, timepoint) in enumerate(ids):
        path = run_folder.segmentation_path(tmp_path / "out", patient, timepoint)
        segments = slicerio.read_segmentation(str(path), skip_voxels=True)["segments"]
        assert [s["name"] for s in segments] == [f"lesion_of_{number}"]  # this study's file, not another's
    assert cttime("board", tmp_path / "out")[0] == 0
    assert len(list((tmp_path / "out").glob("*_board.png"))) == len(ids)


def test_ids_that_differ_only_in_letter_case_are_refused(data, tmp_path):
    folder, _ = data
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", [("P1", "BS", folder / "good.seg.nrrd"),
                                                             ("p1", "BS", folder / "good.seg.nrrd")])
    code, _, err = cttime("cohort", path, "--out", tmp_path / "out", *REFERENCE)
    assert code == 2 and "P1 BS and p1 BS" in err and "letter case" in err


# ---- reserved names: carried columns never pass for computed ones ----------------------------------------------

def test_manifest_columns_named_like_output_columns_are_refused(data, tmp_path):
    folder, _ = data
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", [("P", "BS", folder / "good.seg.nrrd")], lesion_id="x",
                    original_shape_Elongation=0.5, error="", ct_time_score=0.99, batch="A", location="lung")
    code, _, err = cttime("cohort", path, "--out", tmp_path / "out", *REFERENCE)
    assert code == 2, err  # location is the study's location (see test_inputs), not a carried column
    assert "named like columns CTTime computes: lesion_id, original_shape_Elongation, error, ct_time_score;" in err
    assert not (tmp_path / "out").exists()
    case = pipeline.Case("P", "BS", str(folder / "ct.nrrd"), str(folder / "good.seg.nrrd"), extras={"z_x": 1})
    with pytest.raises(CTTimeError, match="named like columns CTTime computes: z_x"):
        pipeline.run([case], tmp_path / "api", pipeline.Options(standardize=str(DEMO_REFERENCE)))


# ---- the cache: an entry that does not match is recomputed, never used -----------------------------------------

def _forged_odd_types(path):
    entry = json.loads(path.read_text())
    entry["rows"][0]["original_shape_Elongation"] = [1, 2]
    entry["sha256"] = cache._checksum(entry["rows"])  # a well-formed entry with a value of the wrong type
    path.write_text(json.dumps(entry))


def _emptied(path):
    entry = json.loads(path.read_text())
    entry.update(rows=[], sha256=cache._checksum([]))
    path.write_text(json.dumps(entry))


def _edited(path):
    entry = json.loads(path.read_text())
    entry["rows"][0]["original_shape_Elongation"] *= 1.5
    path.write_text(json.dumps(entry))


DAMAGE = {
    "edited value": (_edited, 1),
    "[]": (lambda path: path.write_text("[]"), 1),
    "garbage": (lambda path: path.write_bytes(b"\x00{not json"), 1),
    "rows of another type": (lambda path: path.write_text('{"rows": "x", "format": 2}'), 1),
    "wrong value types": (_forged_odd_types, 1),
    "no rows": (_emptied, 1),
}


def _cache_files(out):
    return sorted((out / "cache").glob("*.json"))


def test_damaged_or_swapped_cache_entries_are_recomputed(data, tmp_path):
    folder, _ = data
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd"),
                                                             ("B", "BS", folder / "tumour.seg.nrrd")])
    clean = clean_run(path, tmp_path / "clean")
    out, options = tmp_path / "out", pipeline.Options(standardize=str(DEMO_REFERENCE))
    assert pipeline.run(read_manifest(path), out, options).summary["studies_from_cache"] == 0
    first, second = _cache_files(out)
    swapped = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(swapped)
    result = pipeline.run(read_manifest(path), out, options)
    assert result.summary["studies_from_cache"] == 0 and (out / "lesions.csv").read_bytes() == clean
    for name, (damage, recomputed) in DAMAGE.items():
        damage(_cache_files(out)[0])
        result = pipeline.run(read_manifest(path), out, options)
        assert result.summary["studies_from_cache"] == 2 - recomputed, name
        assert (out / "lesions.csv").read_bytes() == clean, name
    assert pipeline.run(read_manifest(path), out, options).summary["studies_from_cache"] == 2


def test_a_lesion_entry_under_another_lesions_name_is_not_used(data, tmp_path):
    folder, _ = data
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd")])
    clean = clean_run(path, tmp_path / "clean")
    out, options = tmp_path / "out", pipeline.Options(standardize=str(DEMO_REFERENCE))
    pipeline.run(read_manifest(path), out, options)
    case = read_manifest(path)[0]
    context = cache.run_context(PARAMETER_FILE, MODEL_FILE, FeatureExtractor().identity)
    store = cache.CaseCache(out / "cache", cache.case_key(case, context), context)
    rows = {row["lesion_id"]: row for row in store.rows()}
    store.file.unlink()
    store.add_lesion(rows["tumour"])
    store.add_lesion(rows["tumour_top"])
    assert set(store.finished_lesions()) == {"tumour", "tumour_top"}
    files_by_lesion = {lesion: store.partial / store._lesion_file(lesion) for lesion in rows}
    files_by_lesion["tumour"].write_bytes(files_by_lesion["tumour_top"].read_bytes())  # tumour_top's row
    assert set(store.finished_lesions()) == {"tumour_top"}
    result = pipeline.run(read_manifest(path), out, options)
    assert result.summary["studies_from_cache"] == 0 and (out / "lesions.csv").read_bytes() == clean


# ---- processes and signals ---------------------------------------------------------------------------------------

def test_a_killed_worker_costs_nothing_its_task_runs_again():
    items = [(number, 1.0) for number in range(6)]
    seen = []
    with execution.Runner(workers=2) as runner:
        for index, result, error in runner.run(corpus.sleep_then_return, items):
            if not seen:
                os.kill(next(iter(runner._pool._processes)), signal.SIGKILL)  # a real worker, mid-task
            seen.append((index, result, error))
    assert sorted(seen) == [(number, number, None) for number in range(6)]


def test_a_task_that_kills_its_worker_twice_fails_alone():
    items = [(number, number == 2) for number in range(5)]
    with execution.Runner(workers=2) as runner:
        seen = {index: (result, error) for index, result, error in runner.run(corpus.kill_own_worker_on, items)}
    assert sorted(seen) == list(range(5))
    assert isinstance(seen[2][1], execution.WorkerDied) and seen[2][0] is None
    assert all(seen[number] == (number, None) for number in (0, 1, 3, 4))


@pytest.mark.parametrize("deaths, code", [(1, 0), (2, 3)])
def test_a_study_that_kills_its_worker_costs_only_itself(deaths, code, data, tmp_path):
    folder, _ = data
    path = three_studies(folder, tmp_path / "m.csv")
    clean = clean_run(path, tmp_path / "clean")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / run_folder.study_key("B", "BS")).write_text(str(deaths))
    done = run_cli("cohort", path, "--out", tmp_path / "out", "--workers", "2", *REFERENCE,
                   env=dict(ENV, CTTIME_TEST_KILL_WORKER=str(hook)))
    assert done.returncode == code, done.stderr
    assert (hook / run_folder.study_key("B", "BS")).read_text() == "0"  # it did die that often
    if deaths == 1:  # retried once, alone: the run equals a clean one
        assert (tmp_path / "out" / "lesions.csv").read_bytes() == clean
        return
    table = read_lesions_table(tmp_path / "out" / "lesions.csv")
    failed = table[table["patient_id"] == "B"].iloc[0]
    assert failed["error_kind"] == "worker" and "died twice" in failed["error"] and "--workers 1" in failed["error"]
    good, reference = (pd.read_csv(tmp_path / name / "lesions.csv", dtype=str, keep_default_na=False)
                       for name in ("out", "clean"))
    assert good[good["patient_id"] != "B"].reset_index(drop=True).equals(
        reference[reference["patient_id"] != "B"].reset_index(drop=True))  # the other studies, to the last digit
    for patient in ("A", "C"):
        assert run_folder.segmentation_path(tmp_path / "out", patient, "BS").is_file()
    assert "FAILED B BS (study): " in done.stdout


def _sample_manifest(tmp_path):
    """The three sample CTs, each tumour cut into three lesions (real work for a few seconds)."""
    rows = []
    for name in SAMPLE_CASES:
        mask = sitk.ReadImage(str(SAMPLE_DATA / name / "CT_mask.nii.gz"))
        values = sitk.GetArrayFromImage(mask) > 0
        slices = np.flatnonzero(values.any(axis=(1, 2)))
        labels = np.zeros(values.shape, np.uint8)
        for label, chunk in enumerate(np.array_split(slices, 3), start=1):
            labels[chunk] = np.where(values[chunk], label, 0)
        split = corpus.like_image(labels, mask)
        sitk.WriteImage(split, str(tmp_path / f"{name}.nii.gz"))
        for timepoint in ("BS", "FU"):
            rows.append(dict(patient_id=name, timepoint=timepoint, image=SAMPLE_DATA / name / "CT_image.nii.gz",
                             segmentation=tmp_path / f"{name}.nii.gz"))
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv"


def _descendants(pid):
    """The process IDs below ``pid`` (psutil, else /proc)."""
    try:
        import psutil
    except ImportError:
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        found, todo = set(), [pid]
        while todo:
            below = {child for child, parent in parents.items() if parent == todo.pop()} - found
            found |= below
            todo += below
        return found
    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _running(pid):
    """True while ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="looks for processes left behind in /proc")
def test_sigterm_stops_like_ctrl_c_leaves_no_process_and_resumes(tmp_path):
    path = _sample_manifest(tmp_path)
    out = tmp_path / "out"
    command = PYTHON + ["cohort", str(path), "--out", str(out), "--workers", "2", "--quiet", *map(str, REFERENCE)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, children = time.monotonic() + 240, set()
    while not list((out / "cache").glob("**/*.json")) and time.monotonic() < deadline and process.poll() is None:
        children |= _descendants(process.pid)
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    children |= _descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "cttime: interrupted" in stderr and "Traceback" not in stderr
    deadline = time.monotonic() + 10
    while any(map(_running, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(children) >= 2 and [pid for pid in children if _running(pid)] == []  # no orphan worker
    assert not (out / "lesions.csv").exists()
    assert all(json.loads(p.read_text()) for p in (out / "cache").glob("**/*.json"))  # finished lesions, complete
    resumed = no_traceback(subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300))
    assert resumed.returncode == 0, resumed.stderr
    clean = pipeline.run(read_manifest(path), tmp_path / "clean", pipeline.Options(standardize=str(DEMO_REFERENCE),
                                                                                   cache=False))
    assert clean.n_failed == 0
    assert (out / "lesions.csv").read_bytes() == (tmp_path / "clean" / "lesions.csv").read_bytes()


# ---- the output folder: checked first, one run at a time, never half-written ----------------------------------

def test_empty_out_writes_nothing_into_the_working_folder(data, tmp_path, monkeypatch):
    folder, _ = data
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lesions.csv").write_text("mine\n")
    code, _, err = cttime("score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd",
                          "--patient", "P", "--out", "", *REFERENCE)
    assert code == 2 and "Output folder is empty ('')" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesions.csv"]
    assert (tmp_path / "lesions.csv").read_text() == "mine\n"


def _namespace_available():
    if shutil.which("unshare") is None or os.name != "posix":
        return "needs `unshare` (Linux)"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
                                                          "mount -t tmpfs -o size=64k tmpfs \"$TMPDIR\""],
                           capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"cannot mount in a private namespace here: {probe.stderr.strip()}"


def in_namespace(script, tmp_path):
    """Run a shell script as root of a private user and mount namespace (mounts vanish with it)."""
    reason = _namespace_available()
    if reason:
        pytest.skip(f"no read-only or full file system can be made: {reason}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600,
                          env=ENV, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _shell_cttime(*argv, tag, log):
    """A shell line running the real CLI and keeping its exit code, output and errors in ``log``/<tag>.*."""
    words = " ".join(f"'{a}'" for a in PYTHON + [str(a) for a in argv])
    return f"{words} >'{log}/{tag}.out' 2>'{log}/{tag}.err'; echo $? >'{log}/{tag}.rc'\n"


def _logged(log, tag):
    rc, out, err = ((log / f"{tag}.{kind}").read_text() for kind in ("rc", "out", "err"))
    assert "Traceback" not in out + err, err
    return int(rc), out, err


def test_read_only_output_folder_is_refused_before_extraction_and_keeps_results(data, tmp_path):
    folder, _ = data
    out, log = tmp_path / "out", tmp_path / "log"
    log.mkdir()
    score = ["score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd", "--patient", "P",
             *REFERENCE]
    assert run_cli(*score, "--out", out).returncode == 0
    before = (out / "lesions.csv").read_bytes()
    script = (f"mount --bind '{out}' '{out}' && mount -o remount,bind,ro '{out}' && "
              f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}'\n"
              + _shell_cttime(*score, "--out", out, tag="rerun", log=log)
              + _shell_cttime(*score, "--out", folder / "new" / "run", tag="below", log=log))
    in_namespace(script, tmp_path)
    code, _, err = _logged(log, "rerun")
    assert code == 2 and f"Output folder {out} cannot be written to: Read-only file system" in err
    assert (out / "lesions.csv").read_bytes() == before
    code, _, err = _logged(log, "below")
    assert code == 2 and "cannot be written to: Read-only file system" in err


def test_disk_full_mid_run_ends_with_a_message_keeps_results_and_resumes(data, tmp_path):
    folder, _ = data
    out, log = tmp_path / "out", tmp_path / "log"
    out.mkdir()
    log.mkdir()
    one = manifest(tmp_path / "one.csv", folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd")])
    three = three_studies(folder, tmp_path / "three.csv")
    script = (f"mount -t tmpfs -o size=8m tmpfs '{out}' || exit 1\n"
              + _shell_cttime("cohort", one, "--out", out, "--workers", "1", *REFERENCE, tag="first", log=log)
              + f"cp '{out}/lesions.csv' '{log}/first.csv'\n"
              + f"dd if=/dev/zero of='{out}/filler' bs=4k 2>/dev/null; sync\n"
              + _shell_cttime("cohort", three, "--out", out, "--workers", "1", *REFERENCE, tag="full", log=log)
              + f"cp '{out}/lesions.csv' '{log}/after.csv'\nrm '{out}/filler'\n"
              + _shell_cttime("cohort", three, "--out", out, "--workers", "1", *REFERENCE, tag="resumed", log=log)
              + f"cp '{out}/lesions.csv' '{log}/resumed.csv'\n")
    in_namespace(script, tmp_path)
    assert _logged(log, "first")[0] == 0
    code, _, err = _logged(log, "full")
    assert code == 2 and "No space left on device" in err and "a rerun resumes" in err, err
    assert (log / "after.csv").read_bytes() == (log / "first.csv").read_bytes()  # the earlier results, intact
    assert _logged(log, "resumed")[0] == 0
    assert (log / "resumed.csv").read_bytes() == clean_run(three, tmp_path / "clean")


@pytest.mark.skipif(os.name != "posix", reason="the lock holder uses fcntl")
def test_a_second_run_into_the_same_folder_is_refused(data, tmp_path):
    folder, _ = data
    out = tmp_path / "out"
    out.mkdir()
    score = ["score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd", "--patient", "P",
             "--out", out, *REFERENCE]
    with folder_locked(out) as holder:
        code, _, err = cttime(*score)
        assert code == 2 and f"Another CTTime run (process {holder}) is writing to {out}" in err
        assert not (out / "lesions.csv").exists()
    assert cttime(*score)[0] == 0


def test_a_rerun_moves_aside_every_figure_it_does_not_draw_again(data, tmp_path):
    """Issue 24: scoring again into a folder with another standardisation left the earlier board, which showed the
    old minimum. Every study file the rerun does not write again (boards of its own studies included) moves to
    superseded/ and is listed; stale temporaries are removed."""
    folder, _ = data
    out = tmp_path / "out"
    both = manifest(tmp_path / "both.csv", folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd"),
                                                                ("B", "BS", folder / "tumour.seg.nrrd")])
    assert cttime("cohort", both, "--out", out, "--workers", "1", *REFERENCE)[0] == 0
    assert cttime("board", out)[0] == 0
    earlier = (out / "A_BS_board.png").read_bytes()
    (out / ".lesions.csv.x1y2.part").write_text("left by a killed run")
    only_a = manifest(tmp_path / "a.csv", folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd")])
    code, stdout, _ = cttime("cohort", only_a, "--out", out, "--workers", "1", "--standardize", "cohort")
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["leftovers"] == ["A_BS_board.png", "B_BS_board.png", "B_BS_cttime.seg.nrrd"]
    assert record["files"] == ["lesions.csv", "patients.csv", "run.json", "A_BS_cttime.seg.nrrd"]
    assert sorted(p.name for p in out.glob("*_BS_*")) == ["A_BS_cttime.seg.nrrd"]  # no figure of the earlier run
    assert (out / "superseded" / "A_BS_board.png").read_bytes() == earlier
    assert sorted(p.name for p in (out / "superseded").iterdir()) == record["leftovers"]
    assert f"NOTE: 3 file(s) of an earlier run that this run did not write again moved to {out / 'superseded'}" \
        in stdout and "A_BS_board.png, B_BS_board.png, B_BS_cttime.seg.nrrd" in stdout
    assert not list(out.glob("*.part"))


def test_boards_record_their_run_and_a_board_drawn_before_lesions_csv_changed_is_named(data, tmp_path):
    """Each board PNG records run.json's run_id and the SHA-256 of the lesions.csv it was drawn from; `cttime board`
    warns about a board it does not draw again whose lesions.csv has changed since."""
    from PIL import Image

    folder, _ = data
    out = tmp_path / "out"
    both = manifest(tmp_path / "both.csv", folder / "ct.nrrd", [("A", "BS", folder / "good.seg.nrrd"),
                                                                ("B", "BS", folder / "tumour.seg.nrrd")])
    assert cttime("cohort", both, "--out", out, "--workers", "1", *REFERENCE)[0] == 0
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    code, _, err = cttime("board", out, "--pdf")
    assert code == 0 and "WARNING" not in err
    for name in ("A_BS_board.png", "B_BS_board.png"):
        with Image.open(out / name) as png:
            assert png.text["CTTime run"] == run_id
            assert png.text["CTTime lesions.csv sha256"] == files.digest(out / "lesions.csv")
    assert f"CTTime run {run_id}".encode() in (out / "A_BS_board.pdf").read_bytes()
    table = (out / "lesions.csv").read_text(encoding="utf-8")
    (out / "lesions.csv").write_text(table.replace("NOT CLINICALLY", "NOT  CLINICALLY", 1), encoding="utf-8")
    code, _, err = cttime("board", out, "--patient", "A")
    assert code == 0
    assert f"WARNING: B_BS_board.png was drawn from another lesions.csv than {out / 'lesions.csv'} (it changed after " \
           f"the board was drawn, in run {run_id}); draw it again: cttime board {out}" in err
    assert "A_BS_board.png was drawn" not in err  # drawn again just now


@pytest.mark.skipif(os.name != "posix", reason="the lock holder uses fcntl")
def test_board_takes_the_run_folders_lock(data, tmp_path):
    folder, _ = data
    out = tmp_path / "out"
    assert cttime("score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd", "--patient",
                  "P", "--out", out, *REFERENCE)[0] == 0
    with folder_locked(out) as holder:
        code, _, err = cttime("board", out)
        assert code == 2 and f"Another CTTime run (process {holder}) is writing to {out}" in err
        assert not (out / "P_BS_board.png").exists()
    assert cttime("board", out)[0] == 0 and (out / "P_BS_board.png").exists()


# ---- resources: size limits before reading, no endless read --------------------------------------------------

def _nifti_declaring(path, source, size, trailing=0):
    """A .nii.gz whose header declares ``size`` voxels (i, j, k), holding ``source``'s voxels and ``trailing`` zero
    bytes: a decompression bomb (a small file that claims or expands to a huge one)."""
    import gzip

    plain = path.with_suffix("")
    sitk.WriteImage(source, str(plain))
    data = bytearray(plain.read_bytes())
    if size is not None:
        data[42:48] = np.asarray(size, "<i2").tobytes()  # dim[1..3] of the NIfTI-1 header
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(bytes(data))
        handle.write(bytes(trailing))
    plain.unlink()
    return path


def _limit_memory():
    """At most 6 GB of address space: the 32 GB of voxels the bomb declares could not even be tried."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def test_an_image_declaring_billions_of_voxels_is_refused_before_reading(data, tmp_path):
    folder, ct = data
    bomb = _nifti_declaring(tmp_path / "bomb.nii.gz", ct, (2000, 2000, 2000))
    assert bomb.stat().st_size < 1_000_000
    started = time.monotonic()
    done = run_cli("score", "--image", bomb, "--segmentation", folder / "good.seg.nrrd", "--patient", "P",
                   "--out", tmp_path / "out", *REFERENCE, preexec_fn=_limit_memory)
    assert done.returncode == 2, done.stderr
    assert "declares 8,000,000,000 voxels (2000 x 2000 x 2000), more than the limit of 1,000,000,000" in done.stderr
    assert "--max-voxels" in done.stderr and time.monotonic() - started < 60


def test_the_voxel_limit_can_be_raised_by_option_and_environment(data, tmp_path, monkeypatch):
    folder, ct = data
    score = ["score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd", "--patient", "P",
             *REFERENCE]
    voxels = int(np.prod(ct.GetSize()))
    code, _, err = cttime(*score, "--out", tmp_path / "a", "--max-voxels", voxels - 1)
    assert code == 2 and f"declares {voxels:,} voxels" in err
    code, _, err = cttime(*score, "--out", tmp_path / "b", "--max-voxels", 2 * voxels - 1)
    assert code == 2 and f"Segmentation {folder / 'good.seg.nrrd'} declares {2 * voxels:,} voxels" in err  # 2 layers
    code, _, err = cttime(*score, "--out", tmp_path / "b", "--max-voxels", 2 * voxels)
    assert code == 0, err
    monkeypatch.setenv("CTTIME_MAX_VOXELS", str(voxels - 1))
    code, _, err = cttime(*score, "--out", tmp_path / "c")
    assert code == 2 and "CTTIME_MAX_VOXELS=N" in err
    monkeypatch.setenv("CTTIME_MAX_VOXELS", "many")
    code, _, err = cttime(*score, "--out", tmp_path / "d")
    assert code == 2 and "voxel limit must be a whole number" in err


def test_a_dicom_series_is_measured_before_it_is_read(data, tmp_path):
    from dicom_fixtures import write_ct_series

    folder, ct = data
    write_ct_series(ct, tmp_path / "series")
    x, y, z = ct.GetSize()
    score = ["score", "--image", tmp_path / "series", "--segmentation", folder / "good.seg.nrrd", "--patient", "P",
             *REFERENCE]
    code, _, err = cttime(*score, "--out", tmp_path / "a", "--max-voxels", x * y * z - 1)
    assert code == 2 and f"declares {x * y * z:,} voxels ({x} x {y} x {z})" in err
    assert cttime(*score, "--out", tmp_path / "b", "--max-voxels", 2 * x * y * z)[0] == 0


def test_a_gzip_stream_longer_than_the_limit_allows_is_refused(data, tmp_path):
    folder, ct = data
    long = _nifti_declaring(tmp_path / "long.nii.gz", ct, None, trailing=30 << 20)
    score = ["score", "--image", long, "--segmentation", folder / "good.seg.nrrd", "--patient", "P", *REFERENCE]
    code, _, err = cttime(*score, "--out", tmp_path / "a", "--max-voxels", 200_000)
    assert code == 2 and "decompresses to more than 2,648,576 bytes" in err and "--max-voxels" in err
    assert cttime(*score, "--out", tmp_path / "b")[0] == 0  # within the default limit: read as usual


@pytest.mark.skipif(not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"), reason="needs /dev/zero and FIFOs")
def test_devices_and_pipes_are_refused_without_reading(data, tmp_path):
    folder, _ = data
    os.mkfifo(tmp_path / "pipe.nrrd")
    for image, segmentation in (("/dev/zero", folder / "good.seg.nrrd"), (tmp_path / "pipe.nrrd",
                                                                          folder / "good.seg.nrrd"),
                                (folder / "ct.nrrd", "/dev/zero")):
        done = run_cli("score", "--image", image, "--segmentation", segmentation, "--patient", "P", "--out",
                       tmp_path / "out", *REFERENCE, timeout=120)
        assert done.returncode == 2 and "is not a regular file (a device, pipe or socket)" in done.stderr
    for option, what in (("--params", "Parameter file"), ("--model", "Model file"), ("--reference", "Reference file")):
        done = run_cli("score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd",
                       "--patient", "P", "--out", tmp_path / "out", *REFERENCE, option, tmp_path / "pipe.nrrd",
                       timeout=120)
        assert done.returncode == 2 and f"{what} {tmp_path / 'pipe.nrrd'} is not a regular file" in done.stderr
    path = manifest(tmp_path / "m.csv", folder / "ct.nrrd", [("P", "BS", "/dev/zero")])
    done = run_cli("cohort", path, "--out", tmp_path / "out", *REFERENCE, timeout=120)
    assert done.returncode == 2 and "segmentation /dev/zero is not a regular file" in done.stderr
    with pytest.raises(CTTimeError, match="not a regular file"):
        files.digest("/dev/zero")
    (tmp_path / "series").mkdir()
    os.mkfifo(tmp_path / "series" / "pipe")
    (tmp_path / "series" / "a.dcm").write_bytes(b"x")
    assert files.digest(tmp_path / "series") == files.digest(tmp_path / "series")  # the pipe is not read


# ---- file modes follow the umask ---------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o077, 0o600), (0o022, 0o644)])
def test_outputs_get_the_mode_the_umask_gives(umask, mode, data, tmp_path):
    folder, _ = data
    done = run_cli("score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd", "--patient",
                   "P", "--out", tmp_path / "out", *REFERENCE, preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {"lesions.csv", "patients.csv", "run.json", "P_BS_cttime.seg.nrrd"} <= {p.name for p in written}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: oct(mode) for p in written}


# ---- every user error of every subcommand: a message and exit 2 ------------------------------------------------

def _reference(tmp_path, name, edit):
    payload = json.loads(DEMO_REFERENCE.read_text(encoding="utf-8"))
    edit(payload)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(data, tmp_path_factory):
    """A scored run, a header-only copy of its tables, labels and clinical tables, and a plain file."""
    folder, _ = data
    tmp = tmp_path_factory.mktemp("errors")
    code, _, err = cttime("score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd",
                          "--patient", "P", "--out", tmp / "run", *REFERENCE)
    assert code == 0, err
    (tmp / "header").mkdir()
    for name in ("lesions.csv", "patients.csv"):
        (tmp / "header" / name).write_text((tmp / "run" / name).read_text().splitlines()[0] + "\n")
    (tmp / "labels.csv").write_text("patient_id,label\nP,1\n")
    (tmp / "labels_header.csv").write_text("patient_id,label\n")
    (tmp / "clinical.csv").write_text("patient_id,pfs_months,event\nP,3,1\n")
    (tmp / "clinical_header.csv").write_text("patient_id,pfs_months,event\n")
    (tmp / "file").write_text("not a folder")
    manifest(tmp / "m.csv", folder / "ct.nrrd", [("P", "BS", folder / "good.seg.nrrd")])
    for name, edit in REFERENCE_EDITS.items():
        _reference(tmp, name.replace(" ", "_"), edit)
    return tmp


REFERENCE_EDITS = {"n_lesions 1e400": lambda p: p.update(n_lesions=1e400),
                   "features a list": lambda p: p.update(features=[1, 2]),
                   "sd text": lambda p: p["features"]["original_shape_Elongation"].update(sd="abc")}


def _user_errors(tmp, folder):
    lesions, header, file = tmp / "run" / "lesions.csv", tmp / "header" / "lesions.csv", tmp / "file"
    score = ["score", "--image", folder / "ct.nrrd", "--segmentation", folder / "good.seg.nrrd", "--patient", "P"]
    train = ["train", lesions, "--labels", tmp / "labels.csv", "--out", tmp / "t"]
    cases = {f"reference {name}": (score + ["--out", tmp / "o", "--reference", tmp / f"{name.replace(' ', '_')}.json"],
                                   "Reference file") for name in REFERENCE_EDITS}
    cases.update({
        "train --alphas ''": (train + ["--alphas", ""], "--alphas: expected numbers"),
        "train --alphas 2": (train + ["--alphas", "0.5,2"], "each >= 0 and <= 1"),
        "train --lambdas 0": (train + ["--lambdas", "0"], "--lambdas: expected numbers separated by commas, each > 0"),
        "train --folds 1": (train + ["--folds", "1"], "--folds: expected a whole number >= 2"),
        "train --repeats 0": (train + ["--repeats", "0"], "--repeats: expected a whole number >= 1"),
        "train --correlation-cutoff nan": (train + ["--correlation-cutoff", "nan"], "> 0 and <= 1, got 'nan'"),
        "train --min-concordance 5": (train + ["--min-concordance", "5"], ">= -1 and <= 1"),
        "train --seed -1": (train + ["--seed", "-1"], "--seed: expected a whole number >= 0"),
        "train header-only table": (["train", header, "--labels", tmp / "labels.csv", "--out", tmp / "t"],
                                    "0 labelled lesion(s)"),
        "train header-only labels": (["train", lesions, "--labels", tmp / "labels_header.csv", "--out", tmp / "t"],
                                     "0 labelled lesion(s)"),
        "train --out a file": (train[:-2] + ["--out", file], "is a file, not a folder"),
        "rescore header-only table": (["rescore", header, "--out", tmp / "r", *REFERENCE], "has no rows"),
        "rescore --out ''": (["rescore", lesions, "--out", "", *REFERENCE], "Output folder is empty"),
        "rescore --out a file": (["rescore", lesions, "--out", file, *REFERENCE], "is a file, not a folder"),
        "rescore --group-by missing": (["rescore", lesions, "--out", tmp / "g", "--standardize", "cohort",
                                        "--group-by", "nosuch"], "--group-by nosuch: the lesions table has no such column"),
        "reference build header-only": (["reference", "build", header, "-o", tmp / "ref.json"],
                                        "0 scorable lesion(s)"),
        "reference build -o ''": (["reference", "build", lesions, "-o", ""], "Reference file is empty"),
        "reference build -o a folder": (["reference", "build", lesions, "-o", tmp], "is a folder"),
        "longitudinal header-only": (["longitudinal", header, "--out", tmp / "l"], "has no scored lesion"),
        "longitudinal --out ''": (["longitudinal", lesions, "--out", ""], "Output folder is empty"),
        "evaluate header-only labels": (["evaluate", lesions, "--labels", tmp / "labels_header.csv", "--out",
                                         tmp / "e"], "both classes"),
        "evaluate --out a file": (["evaluate", lesions, "--labels", tmp / "labels.csv", "--out", file],
                                  "is a file, not a folder"),
        "survival header-only clinical": (["survival", lesions, "--clinical", tmp / "clinical_header.csv", "--out",
                                           tmp / "s"], "0 patient(s)"),
        "survival --out a file": (["survival", lesions, "--clinical", tmp / "clinical.csv", "--out", file],
                                  "is a file, not a folder"),
        "cohort-report header-only": (["cohort-report", header, "--out", tmp / "r.html"], "no scored lesion"),
        "cohort-report --out ''": (["cohort-report", lesions, "--out", ""], "Report file is empty"),
        "cohort-report --out a folder": (["cohort-report", lesions, "--out", tmp], "is a folder"),
        "board header-only": (["board", tmp / "header"], "has no lesion rows"),
        "board of a file": (["board", file], "Cannot read lesions table"),
        "score --out a file": (score + ["--out", file, *REFERENCE], "is a file, not a folder"),
        "score --out below a file": (score + ["--out", file / "x", *REFERENCE], "cannot be written to"),
        "score --max-voxels 0": (score + ["--out", tmp / "o", "--max-voxels", "0", *REFERENCE],
                                 "expected a whole number >= 1"),
        "cohort --out ''": (["cohort", tmp / "m.csv", "--out", "", *REFERENCE], "Output folder is empty"),
        "cohort --group-by missing": (["cohort", tmp / "m.csv", "--out", tmp / "gb", "--standardize", "cohort",
                                       "--group-by", "nosuch"], "--group-by nosuch: the lesions table has no such column"),
        "cohort --harmonize missing": (["cohort", tmp / "m.csv", "--out", tmp / "gb", "--standardize", "cohort",
                                        "--harmonize", "nosuch"], "--harmonize nosuch: no study has such a column"),
        "demo --out a file": (["demo", "--out", file], "is a file, not a folder"),
        "model is a folder": (score + ["--out", tmp / "o", "--model", tmp, *REFERENCE], "Model file"),
    })
    return cases


USER_ERRORS = sorted(_user_errors(Path("x"), Path("y")))


@pytest.mark.parametrize("name", USER_ERRORS)
def test_every_user_error_is_a_message_and_exit_2(name, run_dir, data):
    argv, words = _user_errors(run_dir, data[0])[name]
    code, _, err = cttime(*argv)
    assert code == 2, err
    assert "error" in err and words in err, err
    assert not (run_dir / "gb").exists()  # a missing --group-by column is found before extraction


def test_json_nested_100000_deep_and_a_log_in_a_missing_folder_are_messages(run_dir, data, tmp_path):
    """Issue 24 (fault injection): a reference nested 100,000 levels deep ended in RecursionError, `cohort
    --log-json` into a missing folder in FileNotFoundError."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"features": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    for argv in (["rescore", run_dir / "run" / "lesions.csv", "--out", tmp_path / "r"],
                 ["score", "--image", data[0] / "ct.nrrd", "--segmentation", data[0] / "good.seg.nrrd", "--patient",
                  "P", "--out", tmp_path / "s"]):
        code, _, err = cttime(*argv, "--reference", deep)
        assert code == 2 and f"Reference file {deep} nests its JSON too deeply" in err, err
    shutil.copytree(run_dir / "run", tmp_path / "copy")
    shutil.copy(deep, tmp_path / "copy" / "run.json")
    code, _, err = cttime("board", tmp_path / "copy")
    assert code == 2 and f"Cannot read {tmp_path / 'copy' / 'run.json'}" in err
    log = tmp_path / "missing" / "log.jsonl"
    code, _, err = cttime("cohort", run_dir / "m.csv", "--out", tmp_path / "c", "--log-json", log, *REFERENCE)
    assert code == 2 and f"--log-json {log}: cannot write to it" in err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("edit", [
    lambda p: p["features"]["original_shape_Elongation"].update(mean=1e308),
    lambda p: p["features"]["original_shape_Elongation"].update(sd=1e-320),
    lambda p: p.update(n_lesions=-5),
    lambda p: p.update(source={"nested": [1]}),
], ids=["mean 1e308", "sd 1e-320", "n_lesions -5", "source an object"])
def test_absurd_but_parseable_references_never_give_a_traceback(edit, run_dir, data, tmp_path):
    reference = _reference(tmp_path, "absurd", edit)
    for argv in (["rescore", run_dir / "run" / "lesions.csv", "--out", tmp_path / "r"],
                 ["score", "--image", data[0] / "ct.nrrd", "--segmentation", data[0] / "good.seg.nrrd", "--patient",
                  "P", "--out", tmp_path / "s"]):
        code, _, err = cttime(*argv, "--reference", reference)
        assert code in (0, 2, 3), err  # whether to refuse such values is the plausibility check's decision
