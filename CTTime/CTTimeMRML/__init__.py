"""The CTTime module's logic without Qt: MRML nodes <-> CTTimeLib.

Everything the Slicer panel and its test need between the scene and CTTimeLib lives here, so it runs on Slicer's
core libraries alone (the slicer-core wheels) as well as inside Slicer:

    volume / segment  -> SimpleITK images with the volume's geometry (RAS in MRML, LPS in ITK; KJI arrays)
    lesions           -> pipeline.extract_lesions, pipeline.score_table, pipeline.result_tables (the CLI's code)
    results           -> segment colours and tags, a vtkMRMLTableNode, lesions.csv / patients.csv, .seg.nrrd

A package, not a CTTimeMRML.py beside CTTime.py: Slicer loads every .py in a module's folder as a module.

Geometry: MRML's IJK-to-RAS matrix and ITK's LPS geometry differ by the sign of the first two axes; numpy arrays
from Slicer and from SimpleITK are both in KJI (slice, row, column) order.
"""

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from CTTimeLib import colormap, inputs, outputs
from CTTimeLib.errors import CTTimeError

PATIENT_ATTRIBUTE, TIMEPOINT_ATTRIBUTE = "CTTime.PatientID", "CTTime.Timepoint"
TIMEPOINTS = ("BS", "FU", "BR", "other")
HU_WINDOW = (-100.0, 300.0)  # the parameter file's re-segmentation range, offered as the editing mask
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Python packages CTTime needs that Slicer does not bundle: import name -> pip requirement.
REQUIRED_PACKAGES = {"radiomics": "pyradiomics", "pandas": "pandas", "sklearn": "scikit-learn",
                     "slicerio": "slicerio", "nrrd": "pynrrd", "yaml": "PyYAML"}

REPORT_PACKAGES = {"matplotlib": "matplotlib"}  # for the tumour-board report (CTTimeLib.report)

TABLE_COLUMNS = (("Patient", "s"), ("Time point", "s"), ("Lesion", "s"), ("Location", "s"), ("Target", "s"),
                 ("CT-TIME score", "d"), ("Status", "s"), ("Longest axial diameter (mm)", "d"),
                 ("Volume (mm3)", "d"), ("Standardization", "s"), ("Note", "s"))


def missing_packages(packages=None):
    """pip requirements of the packages that cannot be imported here (in the order they must be installed)."""
    packages = REQUIRED_PACKAGES if packages is None else packages
    return [requirement for name, requirement in packages.items() if importlib.util.find_spec(name) is None]


# --- geometry: plain functions on numpy / SimpleITK ------------------------------------------------------------

def lps_geometry(ijk_to_ras):
    """(spacing, origin, direction) of an ITK image for a 4x4 MRML IJK-to-RAS matrix."""
    ijk_to_lps = RAS_TO_LPS @ np.asarray(ijk_to_ras, dtype=float)
    columns = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if not np.all(spacing > 0):
        raise CTTimeError("The volume's IJK-to-RAS matrix is singular (zero spacing); reload the CT.", "geometry")
    return tuple(spacing), tuple(ijk_to_lps[:3, 3]), tuple((columns / spacing).flatten())


def ijk_to_ras(image):
    """The 4x4 MRML IJK-to-RAS matrix of a SimpleITK image."""
    return RAS_TO_LPS @ outputs.ijk_to_lps(image)


def image_from_kji(array, ijk_to_ras_matrix):
    """A SimpleITK image from a KJI-ordered array (as Slicer and SimpleITK give them) and an IJK-to-RAS matrix."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise CTTimeError(f"Expected a 3-D volume, got an array of shape {array.shape}.", "image")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    spacing, origin, direction = lps_geometry(ijk_to_ras_matrix)
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction])
    return image


def mask_on_image(array, image, lesion_id):
    """A lesion mask (UInt8 0/1 on ``image``'s grid, cropped to the lesion) from a KJI array sampled on the grid."""
    array = np.asarray(array)
    expected = tuple(reversed(image.GetSize()))
    if array.shape != expected:
        raise CTTimeError(f"Lesion {lesion_id}: mask of shape {array.shape} (KJI) is not on the CT grid {expected}; "
                          "export the segment with the CT as reference volume.", "geometry")
    return inputs.lesion_mask(array, image)


# --- MRML nodes -> CTTimeLib --------------------------------------------------------------------------------------

def matrix_to_numpy(vtk_matrix):
    return np.array([[vtk_matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def volume_to_image(volume_node):
    """The CT of a scalar volume node as a SimpleITK image in LPS, checked to be CT in HU."""
    import slicer
    import vtk

    if volume_node is None or volume_node.GetImageData() is None:
        raise CTTimeError("Select a CT volume (the volume holds no image data).", "image")
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    image = image_from_kji(slicer.util.arrayFromVolume(volume_node), matrix_to_numpy(matrix))
    inputs.check_ct(image, volume_node.GetName())
    return image


def get_tag(segment, key):
    """A segment tag's value, or "" when the segment has no such tag."""
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(key, value) else ""


def segments(segmentation_node):
    """(segment ID, vtkSegment) of every segment, in the segmentation's order."""
    segmentation = segmentation_node.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    return [(segment_id, segmentation.GetSegment(segment_id)) for segment_id in ids]


def segment_location(segment):
    """The segment's CTTime.Location tag, else the location its name implies (e.g. "LU_1" -> lung)."""
    tagged = get_tag(segment, inputs.LOCATION_TAG)
    return inputs.normalize_location(tagged, segment.GetName()) if tagged else inputs.infer_location(segment.GetName())


def is_target(segment):
    return get_tag(segment, inputs.TARGET_TAG).lower() in ("1", "true", "yes")


def set_location(segment, location):
    segment.SetTag(inputs.LOCATION_TAG, inputs.normalize_location(location, segment.GetName()))


def set_target(segment, target):
    segment.SetTag(inputs.TARGET_TAG, "true" if target else "false")


def lesions_from_segmentation(segmentation_node, volume_node, image):
    """One CTTimeLib Lesion per segment, its mask exported on the CT's grid by Slicer's segmentations logic."""
    import slicer

    lesions, seen = [], set()
    for segment_id, segment in segments(segmentation_node):
        name = segment.GetName()
        if name in seen:
            raise CTTimeError(f"Segmentation {segmentation_node.GetName()}: two segments are named {name!r}; rename "
                              "one so every lesion has its own ID.", "input")
        seen.add(name)
        array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, volume_node)
        tags = {key: get_tag(segment, key) for key in (inputs.LOCATION_TAG, inputs.TARGET_TAG) if get_tag(segment, key)}
        lesions.append(inputs.Lesion(name, mask_on_image(array, image, name), segment_location(segment), tags))
    return lesions


@dataclass
class Study:
    """A segmentation node to score, its CT volume node, patient and time point."""

    segmentation_node: object
    volume_node: object
    patient_id: str
    timepoint: str

    @property
    def key(self):
        return outputs.safe_name(f"{self.patient_id}_{self.timepoint}")


def node_source(node):
    """Where a node's data came from (its file, as the CLI's image/segmentation columns), else its name."""
    storage = node.GetStorageNode()
    return storage.GetFileName() if storage is not None and storage.GetFileName() else node.GetName()


def reference_volume(segmentation_node):
    import slicer

    role = slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()
    return segmentation_node.GetNodeReference(role)


def remember_study(study):
    """Store patient, time point and CT on the segmentation node so cohort mode can find the study again."""
    node = study.segmentation_node
    node.SetAttribute(PATIENT_ATTRIBUTE, study.patient_id)
    node.SetAttribute(TIMEPOINT_ATTRIBUTE, study.timepoint)
    node.SetReferenceImageGeometryParameterFromVolumeNode(study.volume_node)


def scene_studies(scene, current=None):
    """Every segmentation in the scene remembered as a CTTime study (``current`` first), for cohort mode.

    One study per patient and time point: a second segmentation of the same study (e.g. a copy) is left out.
    """
    studies = [current] if current else []
    for node in scene.GetNodesByClass("vtkMRMLSegmentationNode"):
        patient_id, volume = node.GetAttribute(PATIENT_ATTRIBUTE), reference_volume(node)
        timepoint = node.GetAttribute(TIMEPOINT_ATTRIBUTE) or "BS"
        if patient_id and volume is not None and (patient_id, timepoint) not in {
                (s.patient_id, s.timepoint) for s in studies}:
            studies.append(Study(node, volume, patient_id, timepoint))
    return studies


@dataclass
class Results:
    lesions: object  # pandas DataFrame, the lesions.csv rows
    patients: object  # pandas DataFrame, the patients.csv rows
    warnings: list = field(default_factory=list)
    model_name: str = "CT-TIME"


def compute(studies, standardize, progress=None, cancelled=None, extractor=None, model=None):
    """Extract, z-score and score every lesion of ``studies`` with the CLI's code.

    ``standardize`` is pipeline.COHORT or the path of a reference JSON; progress(done, total, message) and
    cancelled() are passed to pipeline.extract_lesions (cancelling raises CTTimeLib.errors.Cancelled).
    """
    import pandas as pd
    from CTTimeLib import pipeline
    from CTTimeLib.extraction import FeatureExtractor
    from CTTimeLib.signature import load_model

    model = model or load_model()
    reference = pipeline.resolve_standardization(str(standardize), model)
    extractor = extractor or FeatureExtractor()
    rows = []
    for number, study in enumerate(studies):
        def report(done, total, message, number=number):
            if progress:
                progress(number * 100 + (100 * done) // max(total, 1), 100 * len(studies), message)
        meta = {"patient_id": study.patient_id, "timepoint": study.timepoint,
                "image": node_source(study.volume_node), "segmentation": node_source(study.segmentation_node)}
        image = volume_to_image(study.volume_node)
        lesions = lesions_from_segmentation(study.segmentation_node, study.volume_node, image)
        if not lesions:
            raise CTTimeError(f"Segmentation {study.segmentation_node.GetName()} has no segment: draw the lesions "
                              "first.", "input")
        rows += pipeline.extract_lesions(image, lesions, extractor, meta, report, cancelled)
    scored = pipeline.score_table(pd.DataFrame(rows), model, reference)
    return Results(*pipeline.result_tables(scored, model, extractor), model_name=model.name)


def _rows_of(results, study):
    frame = results.lesions
    mine = frame[(frame["patient_id"] == study.patient_id) & (frame["timepoint"] == study.timepoint)]
    return {row["lesion_id"]: row for row in mine.to_dict("records")}


def _finite(value):
    return value is not None and isinstance(value, (int, float, np.floating)) and bool(np.isfinite(value))


def apply_results(study, results):
    """Colour each segment by its score (CTTimeLib.colormap) and write score, status and provenance as tags."""
    rows = _rows_of(results, study)
    for _, segment in segments(study.segmentation_node):
        row = rows.get(segment.GetName(), {})
        score = row.get("ct_time_score")
        scored = _finite(score)
        segment.SetColor(*colormap.score_color(score if scored else None))
        segment.SetColorAutoGenerated(False)  # else Slicer may replace the score colour from the terminology
        segment.SetTag(inputs.LOCATION_TAG, row.get("location") or segment_location(segment))
        segment.SetTag(outputs.SCORE_TAG, f"{score:.6f}" if scored else "")
        segment.SetTag(outputs.STATUS_TAG, str(row.get("ct_time_status")) if scored else "failed")
        segment.SetTag(outputs.STANDARDIZATION_TAG, outputs.tag_text(row.get("standardization", "")))
        segment.SetTag(outputs.MODEL_TAG, results.model_name)
        if row.get("error"):
            segment.SetTag(outputs.ERROR_TAG, outputs.tag_text(row["error"]))
        else:
            segment.RemoveTag(outputs.ERROR_TAG)


def targets(studies):
    """(patient, time point, lesion) -> True for the segments flagged as RECIST target lesions."""
    return {(study.patient_id, study.timepoint, segment.GetName()): True
            for study in studies for _, segment in segments(study.segmentation_node) if is_target(segment)}


def table_rows(results, targets=None):
    """The results table: one row per lesion, then the aggregates of each patient and time point."""
    targets = targets or {}
    rows = []
    for row in results.lesions.to_dict("records"):
        key = (row["patient_id"], row["timepoint"], row["lesion_id"])
        rows.append([row["patient_id"], row["timepoint"], row["lesion_id"], row["location"],
                     "yes" if targets.get(key) else "", row["ct_time_score"],
                     row["ct_time_status"] if _finite(row["ct_time_score"]) else "failed",
                     row.get("longest_axial_diameter_mm"), row.get("original_shape_MeshVolume"),
                     row["standardization"], row["error"]])
    for row in results.patients.to_dict("records"):
        note = f"{row['n_lesions']} lesion(s), {row['n_failed']} failed, heterogeneity {row['heterogeneity'] or '-'}"
        for name in ("min", "median", "mean", "max"):
            rows.append([row["patient_id"], row["timepoint"], f"[patient {name}]", "", "", row[f"ct_time_{name}"],
                         row[f"status_{name}"], np.nan, row["total_volume_mm3"] if name == "min" else np.nan,
                         row["standardization"], note])
    return rows


def fill_table_node(table_node, results, targets=None):
    """Replace the content of a vtkMRMLTableNode with the results table."""
    import vtk

    rows = table_rows(results, targets)
    table_node.RemoveAllColumns()
    for index, (title, kind) in enumerate(TABLE_COLUMNS):
        column = vtk.vtkDoubleArray() if kind == "d" else vtk.vtkStringArray()
        column.SetName(title)
        for row in rows:
            value = row[index]
            if kind == "d":
                column.InsertNextValue(float(value) if _finite(value) else float("nan"))
            else:
                column.InsertNextValue("" if value is None or (isinstance(value, float) and np.isnan(value))
                                       else str(value))
        table_node.AddColumn(column)
    table_node.SetColumnDescription("CT-TIME score", "P(T-cell inflamed); > 0.5 inflamed. Research use only.")
    table_node.SetLocked(True)
    return table_node


def save_segmentation(segmentation_node, path):
    """Write the (coloured, tagged) segmentation as .seg.nrrd with Slicer's own storage node, atomically."""
    import slicer

    scene = segmentation_node.GetScene()
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    try:
        with outputs.atomic_path(path) as temporary:
            storage.SetFileName(temporary)
            if not storage.WriteData(segmentation_node):
                raise CTTimeError(f"Slicer could not write the segmentation {path}; check that the folder is "
                                  "writable and the disk not full.", "output")
    finally:
        scene.RemoveNode(storage)
    return path


def export(out_dir, results, studies):
    """lesions.csv and patients.csv (the CLI's columns) and each study's coloured .seg.nrrd; the paths written."""
    out_dir = Path(out_dir)
    files = [out_dir / "lesions.csv", out_dir / "patients.csv"]
    outputs.write_table(results.lesions, files[0])
    outputs.write_table(results.patients, files[1])
    for study in studies:
        files.append(save_segmentation(study.segmentation_node, out_dir / f"{study.key}_cttime.seg.nrrd"))
    return files


def summary_lines(results):
    """Short text of the results for the panel and the tumour-board screenshot."""
    lines = []
    for row in results.patients.to_dict("records"):
        if row["n_lesions"]:
            lines.append(f"{row['patient_id']} {row['timepoint']}: {row['n_lesions']} lesion(s), CT-TIME min "
                         f"{row['ct_time_min']:.3f} ({row['status_min']}), median {row['ct_time_median']:.3f}, "
                         f"heterogeneity {row['heterogeneity']}")
        if row["n_failed"]:
            lines.append(f"{row['patient_id']} {row['timepoint']}: {row['n_failed']} lesion(s) failed (see Note)")
    return lines + results.warnings


def write_board(out_dir, results, study):
    """The tumour-board figure of a study (CTTimeLib.report, as `cttime report` draws it); the paths written."""
    from CTTimeLib import report

    image = volume_to_image(study.volume_node)
    masks = {lesion.lesion_id: lesion.mask
             for lesion in lesions_from_segmentation(study.segmentation_node, study.volume_node, image)}
    return report.write_board(out_dir, study.patient_id, study.timepoint, results.lesions, results.patients, image,
                              masks, results.warnings)
