"""RECIST marks in: Slicer markups (LPS and RAS), CSV and DICOM SR (SCOORD on a slice, SCOORD3D) read to the same
marks and proposed to the same mask; bad marks refused with a message (exit 2); `cttime delineate`, `score --marks`
and a cohort's `marks` column end to end on the sample CTs; every output says a lesion was proposed.

The lines are derived from the sample masks (``delineation.marks_from_mask``); Slicer's markups files are written
and read back with slicer-core's real vtkMRMLMarkupsJsonStorageNode where it is installed, the SRs with highdicom.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import slicerio

from conftest import SAMPLE_DATA
from dicom_fixtures import write_ct_series

from CTTimeLib.cli import commands
from CTTimeLib.core import tags
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.geometry import whole_mask
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.delineation import ALGORITHM_NAME, ALGORITHM_VERSION, marks_from_mask, propose
from CTTimeLib.io.marks import Mark, read_marks
from CTTimeLib.io.segmentations import read_lesions
from CTTimeLib.run.summary import EXIT_OK, EXIT_USAGE

CASE = "STS_019"
FAST = ["--reference", str(DEMO_REFERENCE), "--features", "signature", "--perturbations", "0"]


@pytest.fixture(scope="module")
def ct():
    return sitk.ReadImage(str(SAMPLE_DATA / CASE / "CT_image.nii.gz"))


@pytest.fixture(scope="module")
def mark(ct):
    """STS_019's RECIST long and short axes, from its mask, named LU_1."""
    found = marks_from_mask(sitk.ReadImage(str(SAMPLE_DATA / CASE / "CT_mask.nii.gz")), ct, "LU_1")
    assert found.short_axis is not None
    return found


def _ras(point):
    return [-point[0], -point[1], point[2]]


def write_markups(path, lines, system="LPS"):
    """A markups file as Slicer writes it (schema v1.0.3, one Line markup per (name, start, end), with the node name)."""
    convert = _ras if system == "RAS" else list
    markups = [{
        "type": "Line", "name": name, "coordinateSystem": system, "coordinateUnits": "mm", "locked": False,
        "fixedNumberOfControlPoints": False, "labelFormat": "%N-%d", "lastUsedControlPointNumber": 2,
        "controlPoints": [{"id": str(n + 1), "label": f"{name}-{n + 1}", "description": "", "associatedNodeID": "",
                           "position": convert(point), "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
                           "selected": True, "locked": False, "visibility": True, "positionStatus": "defined"}
                          for n, point in enumerate((start, end))],
        "measurements": [{"name": "length", "enabled": True,
                          "value": float(np.linalg.norm(np.subtract(end, start))), "units": "mm",
                          "printFormat": "%-#4.4g%s"}]} for name, start, end in lines]
    path.write_text(json.dumps({"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
                                           "Markups/Resources/Schema/markups-schema-v1.0.3.json#",
                                "markups": markups}, indent=4))
    return path


def _lines(mark):
    return [(mark.lesion_id, mark.start, mark.end), (mark.lesion_id, *mark.short_axis)]


def write_csv(path, lines):
    rows = ["lesion_id,x1,y1,z1,x2,y2,z2"] + [",".join([name] + [repr(float(v)) for v in (*start, *end)])
                                              for name, start, end in lines]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def series(ct, tmp_path_factory):
    """STS_019 as a DICOM CT series: its folder and datasets."""
    folder = tmp_path_factory.mktemp("marks_ct") / "ct"
    return folder, write_ct_series(ct, folder)


def write_sr(path, groups, datasets):
    """A Comprehensive 3D SR (TID 1500) of length measurements, written by highdicom. ``groups``: (lesion ID,
    [(short, points, header or None)]), the points pixel (column, row) on ``header``'s slice (SCOORD, with the label
    as OHIF writes it: a free-text finding beside its tool tag) or LPS mm (SCOORD3D, the ID the tracking
    identifier, as QuantitativeReporting writes it)."""
    hd = pytest.importorskip("highdicom")
    from pydicom.sr.codedict import codes

    contains = hd.sr.RelationshipTypeValues

    def line(points, header):
        if header is None:
            return hd.sr.Scoord3DContentItem(
                name=codes.DCM.ImageRegion, graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
                graphic_data=np.array(points, float), frame_of_reference_uid=datasets[0].FrameOfReferenceUID,
                relationship_type=contains.INFERRED_FROM)
        item = hd.sr.ScoordContentItem(name=codes.DCM.ImageRegion, graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                                       graphic_data=np.array(points, float), relationship_type=contains.INFERRED_FROM)
        item.ContentSequence = hd.sr.ContentSequence([hd.sr.ImageContentItem(
            name=codes.DCM.SourceOfMeasurement, referenced_sop_class_uid=header.SOPClassUID,
            referenced_sop_instance_uid=header.SOPInstanceUID, relationship_type=contains.SELECTED_FROM)])
        return item

    built = []
    for lesion_id, lengths in groups:
        measurements = []
        for short, points, header in lengths:
            measurement = hd.sr.Measurement(name=codes.SCT.ShortAxis if short else codes.SCT.Length,
                                            value=float(np.linalg.norm(np.subtract(points[1], points[0]))),
                                            unit=codes.UCUM.Millimeter)
            measurement[0].ContentSequence = hd.sr.ContentSequence([line(points, header)])
            measurements.append(measurement)
        ohif = lengths[0][2] is not None
        built.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=hd.UID(), identifier="Cornerstone3DTools@^0.1.0:Length" if ohif else lesion_id),
            finding_type=hd.sr.CodedConcept("CORNERSTONEFREETEXT", "CST4", lesion_id) if ohif else None,
            measurements=measurements))
    return _save_report(path, built, datasets)


def _save_report(path, groups, datasets):
    """A Comprehensive 3D SR holding a TID 1500 measurement report of ``groups`` on the CT ``datasets``, at ``path``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    observer = hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Reader^A")))
    report = hd.sr.MeasurementReport(observation_context=observer, procedure_reported=codes.SCT.ComputedTomography,
                                     imaging_measurements=groups)
    hd.sr.Comprehensive3DSR(evidence=datasets, content=report, series_instance_uid=hd.UID(), series_number=10,
                            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test").save_as(path)
    return path


def _on_slice(ct, datasets, points):
    """LPS points as pixel coordinates (column, row; 0, 0 the top left corner) on their CT slice, and its header."""
    index = [np.array(ct.TransformPhysicalPointToContinuousIndex(point)) for point in points]
    slices = {int(round(i[2])) for i in index}
    assert len(slices) == 1
    return [[float(i[0] + 0.5), float(i[1] + 0.5)] for i in index], datasets[slices.pop()]


def _sr_scoord(path, ct, series, mark):
    folder, datasets = series
    lengths = [(short, *_on_slice(ct, datasets, ends)) for short, ends in
               ((False, (mark.start, mark.end)), (True, mark.short_axis))]
    return write_sr(path, [(mark.lesion_id, lengths)], datasets)


def _sr_planar(path, ct, series, mark):
    """Two TID 1410 groups as QuantitativeReporting writes a line: the lesion ID as tracking identifier, the line
    the group's image region (SCOORD POLYLINE on its slice), a Length measurement; the shorter is the short axis."""
    hd = pytest.importorskip("highdicom")
    from pydicom.sr.codedict import codes

    folder, datasets = series
    groups = []
    for ends in ((mark.start, mark.end), mark.short_axis):
        points, header = _on_slice(ct, datasets, ends)
        region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=np.array(points),
                                   source_image=hd.sr.SourceImageForRegion(header.SOPClassUID, header.SOPInstanceUID))
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=mark.lesion_id),
            referenced_region=region, measurements=[hd.sr.Measurement(
                name=codes.SCT.Length, value=float(np.linalg.norm(np.subtract(*ends))), unit=codes.UCUM.Millimeter)]))
    return _save_report(path, groups, datasets)


def _sr_scoord3d(path, series, mark):
    return write_sr(path, [(mark.lesion_id, [(False, [mark.start, mark.end], None),
                                             (True, list(mark.short_axis), None)])], series[1])


def _same(found, expected, tolerance=1e-4):
    assert [m.lesion_id for m in found] == [expected.lesion_id]
    got = found[0]
    np.testing.assert_allclose([got.start, got.end], [expected.start, expected.end], atol=tolerance)
    np.testing.assert_allclose(got.short_axis, expected.short_axis, atol=tolerance)


def test_every_input_form_gives_the_same_marks_and_the_same_mask(ct, mark, series, tmp_path):
    files = {"mrk.json LPS": write_markups(tmp_path / "lps.mrk.json", _lines(mark)),
             "mrk.json RAS": write_markups(tmp_path / "ras.mrk.json", _lines(mark), "RAS"),
             "CSV": write_csv(tmp_path / "lines.csv", _lines(mark)),
             "SR SCOORD": _sr_scoord(tmp_path / "scoord.dcm", ct, series, mark),
             "SR SCOORD (image region)": _sr_planar(tmp_path / "planar.dcm", ct, series, mark),
             "SR SCOORD3D": _sr_scoord3d(tmp_path / "scoord3d.dcm", series, mark)}
    expected = sitk.GetArrayFromImage(whole_mask(propose(ct, mark).mask, ct))
    assert expected.sum() > 100
    for form, path in files.items():
        found = read_marks(path, ct, series[0])
        _same(found, mark)
        mask = sitk.GetArrayFromImage(whole_mask(propose(ct, found[0]).mask, ct))
        if form.startswith("SR"):  # slice positions pass through DICOM decimal strings: end points 1e-11 mm apart
            assert 2 * np.sum(mask & expected) / (mask.sum() + expected.sum()) > 0.999, form
        else:
            assert np.array_equal(mask, expected), form


def test_the_longer_line_is_the_long_axis_whatever_the_order(ct, mark, tmp_path):
    lines = _lines(mark)[::-1]
    _same(read_marks(write_csv(tmp_path / "reversed.csv", lines), ct), mark)


def test_sr_pixel_coordinates_are_placed_as_highdicom_places_them(ct, mark, series, tmp_path):
    hd = pytest.importorskip("highdicom")
    points, header = _on_slice(ct, series[1], (mark.start, mark.end))
    transform = hd.spatial.ImageToReferenceTransformer(image_position=header.ImagePositionPatient,
                                                       image_orientation=header.ImageOrientationPatient,
                                                       pixel_spacing=header.PixelSpacing)
    found = read_marks(_sr_scoord(tmp_path / "sr.dcm", ct, series, mark), ct, series[0])[0]
    np.testing.assert_allclose([found.start, found.end], transform(np.array(points)), atol=1e-6)


def test_slicer_reads_the_markups_files_and_writes_files_cttime_reads(ct, mark, tmp_path):
    slicer = pytest.importorskip("slicer", reason="slicer-core has wheels for Python >= 3.10")
    scene = slicer.vtkMRMLScene()
    for system in ("LPS", "RAS"):
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode")
        storage = slicer.vtkMRMLMarkupsJsonStorageNode()
        scene.AddNode(storage)
        storage.SetFileName(str(write_markups(tmp_path / f"{system}.mrk.json", _lines(mark)[:1], system)))
        assert storage.ReadData(node)
        got = [node.GetNthControlPointPosition(n) for n in range(node.GetNumberOfControlPoints())]
        np.testing.assert_allclose(got, [_ras(mark.start), _ras(mark.end)], atol=1e-6)
        # Slicer's own file (coordinates in the chosen system, the name only in the points' labels)
        written = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", "LU_1")
        for point in (mark.start, mark.end):
            written.AddControlPoint(*_ras(point))
        storage.SetCoordinateSystem(getattr(slicer.vtkMRMLStorageNode, f"CoordinateSystem{system}"))
        storage.SetFileName(str(tmp_path / f"slicer_{system}.mrk.json"))
        assert storage.WriteData(written)
        assert json.loads((tmp_path / f"slicer_{system}.mrk.json").read_text())["markups"][0][
            "coordinateSystem"] == system
        found = read_marks(tmp_path / f"slicer_{system}.mrk.json", ct)
        assert [m.lesion_id for m in found] == ["LU_1"]
        np.testing.assert_allclose([found[0].start, found[0].end], [mark.start, mark.end], atol=1e-4)


def _delineate(marks, out, image=None):
    image = image or SAMPLE_DATA / CASE / "CT_image.nii.gz"
    return commands.main(["delineate", "--image", str(image), "--marks", str(marks), "--patient", CASE,
                          "--out", str(out)])


def _off(point, shift):
    return tuple(np.add(point, shift))


@pytest.mark.parametrize("problem, lines, words", [
    ("off the CT", lambda m: [("LU_1", _off(m.start, (500, 0, 0)), m.end)], ["LU_1", "off the CT"]),
    ("zero length", lambda m: [("LU_1", m.start, m.start)], ["LU_1", "zero length"]),
    ("a slice the CT lacks", lambda m: [("LU_1", _off(m.start, (0, 0, 400)), _off(m.end, (0, 0, 400)))],
     ["LU_1", "slice the CT lacks"]),
    ("a third line", lambda m: _lines(m) + [("LU_1", m.start, m.end)], ["LU_1", "3 lines"]),
    ("no ID", lambda m: [(" ", m.start, m.end)], ["no lesion ID"]),
])
def test_bad_marks_exit_2_with_a_message_naming_file_and_lesion(ct, mark, problem, lines, words, tmp_path, capsys):
    files = [write_csv(tmp_path / "bad.csv", lines(mark))]
    if problem != "no ID":  # a markups file names a nameless line after its points' labels or the file
        files.append(write_markups(tmp_path / "bad.mrk.json", lines(mark)))
    for path in files:
        assert _delineate(path, tmp_path / "out") == EXIT_USAGE, problem
        err = capsys.readouterr().err
        assert str(path) in err and all(word in err for word in words), (problem, err)
        assert "Traceback" not in err
    assert not list((tmp_path / "out").glob("*.seg.nrrd")) if (tmp_path / "out").exists() else True


def test_an_sr_on_a_slice_the_ct_series_lacks_or_without_the_series_exits_2(ct, mark, series, tmp_path, capsys):
    folder, datasets = series
    sr = _sr_scoord(tmp_path / "sr.dcm", ct, series, mark)
    assert _delineate(sr, tmp_path / "out") == EXIT_USAGE  # the CT given as NIfTI: no slices to place it on
    assert "DICOM series folder" in capsys.readouterr().err
    other = tmp_path / "other"  # the same CT, written again: other SOP instance UIDs
    write_ct_series(ct, other)
    assert _delineate(sr, tmp_path / "out", other) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "slice the CT lacks" in err and "LU_1" in err
    assert _delineate(sr, tmp_path / "out", folder) == EXIT_OK


HOSTILE_MARKUPS = {
    "not JSON": b"{\"markups\": [",
    "not UTF-8": b"\xff\xfe{}",
    "deeply nested": b"[" * 100000 + b"]" * 100000,
    "a list, not an object": b"[1, 2]",
    "markups not a list": b"{\"markups\": {\"type\": \"Line\"}}",
    "no line": json.dumps({"markups": [{"type": "Fiducial", "controlPoints": []}]}).encode(),
    "one end point": json.dumps({"markups": [{"type": "Line", "name": "LU_1", "controlPoints": [
        {"position": [0, 0, 0]}]}]}).encode(),
    "positions not numbers": json.dumps({"markups": [{"type": "Line", "name": "LU_1", "controlPoints": [
        {"position": ["a", 0, 0]}, {"position": [1, 2, 3]}]}]}).encode(),
    "NaN position": b'{"markups": [{"type": "Line", "name": "LU_1", "controlPoints": [{"position": [NaN, 0, 0]},'
                    b' {"position": [1, 2, 3]}]}]}',
    "unknown coordinate system": json.dumps({"markups": [{"type": "Line", "name": "LU_1", "coordinateSystem": "XYZ",
                                                          "controlPoints": []}]}).encode(),
    "control characters in the name": json.dumps({"markups": [{"type": "Line", "name": "LU\n1", "controlPoints": [
        {"position": [0, 0, 0]}, {"position": [1, 2, 3]}]}]}).encode(),
    "no name in a file of two lines": json.dumps({"markups": [{"type": "Line", "controlPoints": [
        {"position": [0, 0, 0]}, {"position": [1, 2, 3]}]}] * 2}).encode(),
    "empty file": b"",
}
HOSTILE_CSV = {
    "no coordinates": b"lesion_id,x1\nLU_1,1\n",
    "text for a number": b"lesion_id,x1,y1,z1,x2,y2,z2\nLU_1,a,0,0,1,1,1\n",
    "empty coordinate": b"lesion_id,x1,y1,z1,x2,y2,z2\nLU_1,,0,0,1,1,1\n",
    "infinite coordinate": b"lesion_id,x1,y1,z1,x2,y2,z2\nLU_1,inf,0,0,1,1,1\n",
    "NUL byte": b"lesion_id,x1,y1,z1,x2,y2,z2\nLU\x00_1,0,0,0,1,1,1\n",
    "header only": b"lesion_id,x1,y1,z1,x2,y2,z2\n",
    "empty file": b"",
    "unknown location": b"lesion_id,x1,y1,z1,x2,y2,z2,location\nLU_1,0,0,0,1,1,1,brain\n",
    "binary": bytes(range(1, 256)) * 10,
}


@pytest.mark.parametrize("name, content", [(f"{n}.mrk.json", c) for n, c in HOSTILE_MARKUPS.items()]
                         + [(f"{n}.csv", c) for n, c in HOSTILE_CSV.items()])
def test_hostile_marks_files_get_a_message_never_a_traceback(ct, name, content, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CTTimeError) as raised:
        read_marks(path, ct)
    assert str(path) in str(raised.value) and raised.value.kind == "input"
    assert _delineate(path, tmp_path / "out") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err


def test_other_files_given_as_marks_are_refused(ct, tmp_path):
    for path, words in ((tmp_path / "missing.csv", "not found"), (SAMPLE_DATA / CASE / "CT_mask.nii.gz", "not one")):
        with pytest.raises(CTTimeError, match=words):
            read_marks(path, ct)


def test_delineate_writes_one_tagged_segment_per_mark(ct, mark, tmp_path, capsys):
    other = Mark("LN_2", mark.start, mark.end)  # the same lesion under another name, long axis only
    lines = _lines(mark) + [(other.lesion_id, other.start, other.end)]
    assert _delineate(write_markups(tmp_path / "lines.mrk.json", lines), tmp_path / "out") == EXIT_OK
    out = capsys.readouterr().out
    path = tmp_path / "out" / f"{CASE}_BS_proposed.seg.nrrd"
    assert str(path) in out and "LU_1: proposed" in out
    segments = {s["name"]: s for s in slicerio.read_segmentation(str(path), skip_voxels=True)["segments"]}
    assert set(segments) == {"LU_1", "LN_2"}
    assert segments["LU_1"]["tags"][tags.DELINEATION_TAG] == "proposed from RECIST long and short axes"
    assert segments["LN_2"]["tags"][tags.DELINEATION_TAG] == "proposed from RECIST line"
    assert segments["LN_2"]["tags"][tags.LOCATION_TAG] == "lymph node"
    read = {lesion.lesion_id: lesion for lesion in read_lesions(path, ct)}
    for expected in (mark, other):
        assert np.array_equal(sitk.GetArrayFromImage(whole_mask(read[expected.lesion_id].mask, ct)),
                              sitk.GetArrayFromImage(whole_mask(propose(ct, expected).mask, ct)))


def _score(out, *args):
    return commands.main(["score", "--image", str(SAMPLE_DATA / CASE / "CT_image.nii.gz"), "--patient", CASE,
                          "--out", str(out)] + FAST + [str(a) for a in args])


def _table(path):
    return pd.read_csv(path, keep_default_na=False, dtype={"delineation": str, "warning": str})


def test_score_with_marks_proposes_and_scores_and_says_so(mark, tmp_path, capsys):
    marks = write_csv(tmp_path / "lines.csv", _lines(mark))
    assert _score(tmp_path / "proposed", "--marks", marks) == EXIT_OK
    proposed = _table(tmp_path / "proposed" / "lesions.csv").set_index("lesion_id")
    assert proposed.loc["LU_1", "delineation"] == "proposed from RECIST long and short axes"
    assert proposed.loc["LU_1", "marks"] == str(marks) and proposed.loc["LU_1", "segmentation"] == ""
    record = json.loads((tmp_path / "proposed" / "run.json").read_text())
    assert record["delineation"] == {"proposed_lesions": 1, "algorithm": ALGORITHM_NAME,
                                     "algorithm_version": ALGORITHM_VERSION}
    assert list(proposed.columns).index("delineation") == list(proposed.columns).index("standardization") + 1
    segments = slicerio.read_segmentation(str(tmp_path / "proposed" / f"{CASE}_BS_cttime.seg.nrrd"),
                                          skip_voxels=True)["segments"]
    assert segments[0]["tags"][tags.DELINEATION_TAG].startswith("proposed")
    assert segments[0]["tags"][tags.SCORE_TAG]  # scored like any lesion
    # beside a segmentation: its lesion manual, the marked one proposed; a mark of a lesion it holds is refused
    others = write_csv(tmp_path / "others.csv", [("LN_2", mark.start, mark.end)])
    mask = SAMPLE_DATA / CASE / "CT_mask.nii.gz"
    assert _score(tmp_path / "both", "--segmentation", mask, "--label-name", "1=LU_1", "--marks", others) == EXIT_OK
    both = _table(tmp_path / "both" / "lesions.csv").set_index("lesion_id")
    assert both.loc["LU_1", "delineation"] == "manual" and both.loc["LN_2", "delineation"].startswith("proposed")
    assert both.loc["LN_2", "ct_time_score"] > 0
    assert _score(tmp_path / "clash", "--segmentation", mask, "--label-name", "1=LU_1", "--marks", marks) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "LU_1 are already delineated in segmentation" in err and str(marks) in err and str(mask) in err
    assert _score(tmp_path / "none") == EXIT_USAGE  # neither segmentation nor marks
    assert "--segmentation FILE, --marks FILE" in capsys.readouterr().err
    assert _score(tmp_path / "located", "--marks", marks, "--location", "LU_1=LN") == EXIT_OK
    assert _table(tmp_path / "located" / "lesions.csv")["location"].tolist() == ["lymph node"]
    assert _score(tmp_path / "unknown", "--marks", marks, "--location", "LU_9=lung") == EXIT_USAGE
    assert "has no lesion 'LU_9' to give a location" in capsys.readouterr().err


def test_a_proposals_warnings_go_into_its_warning_cell(ct, tmp_path, capsys):
    bone = np.argwhere(sitk.GetArrayFromImage(ct) > 700)[0]  # a line in bone: the proposal warns
    start = ct.TransformIndexToPhysicalPoint([int(bone[2]), int(bone[1]), int(bone[0])])
    end = ct.TransformIndexToPhysicalPoint([int(bone[2]) + 8, int(bone[1]), int(bone[0])])
    warnings = propose(ct, Mark("bone_1", start, end)).warnings
    assert warnings
    assert _score(tmp_path / "run", "--marks", write_csv(tmp_path / "bone.csv", [("bone_1", start, end)])) in (
        EXIT_OK, 3)
    row = _table(tmp_path / "run" / "lesions.csv").iloc[0]
    assert all(warning in row["warning"] for warning in warnings)
    assert row["delineation_warning"] == " | ".join(warnings)
    capsys.readouterr()
    assert _delineate(tmp_path / "bone.csv", tmp_path / "proposed") == EXIT_OK  # written, and the warnings said
    err = capsys.readouterr().err
    assert all(f"WARNING: {warning}" in err for warning in warnings)


def test_cohort_marks_column_and_batch_script(mark, tmp_path):
    marks = write_markups(tmp_path / "lines.mrk.json", _lines(mark))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("patient_id,timepoint,image,segmentation,marks\n"
                        f"{CASE},BS,{SAMPLE_DATA / CASE / 'CT_image.nii.gz'},,{marks.name}\n"
                        f"STS_025,BS,{SAMPLE_DATA / 'STS_025' / 'CT_image.nii.gz'},"
                        f"{SAMPLE_DATA / 'STS_025' / 'CT_mask.nii.gz'},\n")
    assert commands.main(["cohort", str(manifest), "--out", str(tmp_path / "cli"), "--workers", "1"] + FAST) == 0
    table = _table(tmp_path / "cli" / "lesions.csv").set_index("patient_id")
    assert table.loc[CASE, "delineation"].startswith("proposed") and table.loc[CASE, "lesion_id"] == "LU_1"
    assert table.loc["STS_025", "delineation"] == "manual"
    script = SAMPLE_DATA.parents[1] / "Scripts" / "CTTimeBatch.py"
    done = subprocess.run([sys.executable, str(script), "--manifest", str(manifest), "--out", str(tmp_path / "batch"),
                           "--reference", str(DEMO_REFERENCE), "--features", "signature", "--perturbations", "0"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == EXIT_OK, done.stderr
    batch = _table(tmp_path / "batch" / "lesions.csv").set_index("patient_id")
    assert batch.loc[CASE, "ct_time_score"] == pytest.approx(table.loc[CASE, "ct_time_score"], abs=1e-12)
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,timepoint,image,segmentation,marks\n"
                   f"{CASE},BS,{SAMPLE_DATA / CASE / 'CT_image.nii.gz'},,missing.mrk.json\n"
                   f"STS_025,BS,{SAMPLE_DATA / 'STS_025' / 'CT_image.nii.gz'},,\n")
    with pytest.raises(CTTimeError) as raised:
        from CTTimeLib.run.manifest import read_manifest

        read_manifest(bad)
    assert "marks not found" in str(raised.value) and "empty segmentation (and no marks)" in str(raised.value)


def test_dicom_seg_and_sr_say_which_lesions_were_proposed(ct, mark, series, tmp_path):
    hd = pytest.importorskip("highdicom")
    folder, datasets = series
    others = write_csv(tmp_path / "others.csv", [("LN_2", mark.start, mark.end)])
    code = commands.main(["score", "--image", str(folder), "--segmentation", str(SAMPLE_DATA / CASE / "CT_mask.nii.gz"),
                          "--label-name", "1=LU_1", "--marks", str(others), "--patient", CASE, "--out",
                          str(tmp_path / "run"), "--dicom"] + FAST)
    assert code == EXIT_OK
    seg = pydicom.dcmread(tmp_path / "run" / f"{CASE}_BS_cttime_seg.dcm")
    segments = {s.SegmentLabel: s for s in seg.SegmentSequence}
    assert segments["LU_1"].SegmentAlgorithmType == "MANUAL" and "SegmentAlgorithmName" not in segments["LU_1"]
    assert segments["LN_2"].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert segments["LN_2"].SegmentAlgorithmName == ALGORITHM_NAME
    identification = segments["LN_2"].SegmentationAlgorithmIdentificationSequence[0]
    assert identification.AlgorithmName == ALGORITHM_NAME and identification.AlgorithmVersion == ALGORITHM_VERSION
    report = hd.sr.srread(tmp_path / "run" / f"{CASE}_BS_cttime_sr.dcm")
    texts = [item.TextValue for item in _items(report) if item.ValueType == "TEXT"]
    assert any(text.startswith("LN_2: proposed from RECIST line") and ALGORITHM_NAME in text for text in texts)
    assert not any(text.startswith("LU_1: proposed") for text in texts)
    coded = {(_meaning(item), item.ConceptCodeSequence[0].CodeMeaning) for item in _items(report)
             if item.ValueType == "CODE" and _meaning(item) == "Lesion delineation"}
    assert coded == {("Lesion delineation", "Proposed from RECIST line"), ("Lesion delineation", "Manual delineation")}


def _items(dataset):
    for item in getattr(dataset, "ContentSequence", []):
        yield item
        yield from _items(item)


def _meaning(item):
    return item.ConceptNameCodeSequence[0].CodeMeaning


def test_the_board_marks_each_proposed_lesion(mark, tmp_path):
    from CTTimeLib.figures import tumour_board

    others = write_csv(tmp_path / "others.csv", [("LN_2", mark.start, mark.end)])
    assert _score(tmp_path / "run", "--segmentation", SAMPLE_DATA / CASE / "CT_mask.nii.gz", "--label-name",
                  "1=LU_1", "--marks", others, "--no-segmentation") == EXIT_OK  # masks read (proposed) again
    lesions = tumour_board.read_table(tmp_path / "run" / "lesions.csv", "lesions")
    image, masks, reason = tumour_board.load_case(tmp_path / "run", lesions)
    board = tumour_board.board_figure(CASE, "BS", lesions, None, image, masks, image_reason=reason)
    panels = {panel["lesion_id"]: panel for panel in board.panels}
    assert panels["LN_2"]["proposed"] and tumour_board.PROPOSED_MARK in panels["LN_2"]["texts"]
    assert not panels["LU_1"]["proposed"] and tumour_board.PROPOSED_MARK not in panels["LU_1"]["texts"]
    badges = [text for text in board.figure.findobj(lambda artist: getattr(artist, "get_gid", lambda: None)()
                                                    == "proposed")]
    assert len(badges) == 1 and badges[0].get_text() == tumour_board.PROPOSED_BADGE
    assert badges[0].axes is panels["LN_2"]["image_axes"] and badges[0].get_fontsize() >= 7
