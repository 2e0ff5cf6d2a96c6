"""Tumour-board figure: real pyradiomics on real sarcoma CTs, boards drawn from the run folder and checked
against lesions.csv / patients.csv (texts, layout, determinism, size)."""

import hashlib
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from matplotlib.patches import Rectangle

from CTTimeLib.cli import commands
from CTTimeLib.core import colormap
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.figures import tumour_board
from CTTimeLib.run.summary import EXIT_USAGE
from CTTimeLib.run import pipeline

# 12 pieces of one real tumour, named so that every location occurs, plus a speck of air that must fail.
MANY_NAMES = ["liver_1", "liver_2", "LU_1", "LU_2", "LN_1", "LN_2", "bone_1", "bone_2", "thigh_1", "thigh_2",
              "thigh_3", "thigh_4"]
AIR_LESION = "LU_air"


def _many_lesion_labelmap(shared_sts, folder):
    """STS_001's tumour cut into 12 pieces (2 x 2 in-plane x 3 slabs), plus a 2 x 2 voxel lesion in air."""
    mask = sitk.ReadImage(str(shared_sts / "STS_001" / "CT_mask.nii.gz"))
    tumour = sitk.GetArrayFromImage(mask) > 0
    labels = np.zeros(tumour.shape, dtype=np.uint8)
    k, j, i = np.nonzero(tumour)
    k_cuts = np.quantile(k, [1 / 3, 2 / 3])
    for label, (slab, half_j, half_i) in enumerate(itertools.product(range(3), range(2), range(2)), start=1):
        inside = ((np.searchsorted(k_cuts, k, side="right") == slab) & ((j >= np.median(j)) == half_j)
                  & ((i >= np.median(i)) == half_i))
        labels[k[inside], j[inside], i[inside]] = label
    labels[30, 1:3, 1:3] = 13  # air: nothing left after re-segmentation to -100..300 HU
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(mask)
    path = folder / "many.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture(scope="module")
def run_dir(shared_sts, sample_case, tmp_path_factory):
    folder = tmp_path_factory.mktemp("board")
    image, mask = sample_case
    eroded = sitk.BinaryErode(sitk.ReadImage(str(mask)) > 0, [2, 2, 0])
    sitk.WriteImage(eroded, str(folder / "followup.nii.gz"))
    broken = folder / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    names = dict(enumerate(MANY_NAMES + [AIR_LESION], start=1))
    cases = [pipeline.Case("MANY", "BS", str(shared_sts / "STS_001" / "CT_image.nii.gz"),
                           str(_many_lesion_labelmap(shared_sts, folder)), names=names),
             pipeline.Case("TREND", "BS", str(image), str(mask)),
             pipeline.Case("TREND", "FU", str(image), str(folder / "followup.nii.gz")),
             pipeline.Case("BROKEN", "BS", str(image), str(broken))]
    out = folder / "run"
    pipeline.run(cases, out, pipeline.Options(standardize=str(DEMO_REFERENCE)))
    return out


@pytest.fixture(scope="module")
def tables(run_dir):
    return commands.read_lesions_table(run_dir / "lesions.csv"), pd.read_csv(run_dir / "patients.csv", dtype=str)


def _board(run_dir, patient, timepoint):
    lesions = tumour_board.read_table(run_dir / "lesions.csv", "lesions")
    rows = lesions[(lesions["patient_id"] == patient) & (lesions["timepoint"] == timepoint)]
    image, masks, reason = tumour_board.load_case(run_dir, rows)
    patients = tumour_board.read_table(run_dir / "patients.csv", "patients")
    return tumour_board.board_figure(patient, timepoint, lesions, patients, image, masks, image_reason=reason)


def _boxes(board, kind):
    board.figure.canvas.draw()
    renderer = board.figure.canvas.get_renderer()
    if kind == "axes":
        return [(ax.get_gid(), ax.get_window_extent(renderer)) for ax in board.figure.axes if ax.get_visible()]
    from matplotlib.text import Text

    return [(t.get_text(), t.get_window_extent(renderer)) for t in board.figure.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


def _overlaps(boxes, tolerance=0.5):
    found = []
    for (name_a, a), (name_b, b) in itertools.combinations(boxes, 2):
        if (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance):
            found.append((name_a, name_b))
    return found


def test_run_folder_records_image_and_segmentation(tables):
    lesions, _ = tables
    assert (lesions["image"].str.endswith("CT_image.nii.gz")).all()
    assert set(lesions.loc[lesions["patient_id"] == "MANY", "segmentation"].str.rsplit("/", n=1).str[-1]) == {
        "many.nii.gz"}


def test_one_lesion_board_agrees_with_tables(run_dir, tables):
    lesions, patients = tables
    board = _board(run_dir, "TREND", "BS")
    row = lesions[(lesions["patient_id"] == "TREND") & (lesions["timepoint"] == "BS")].iloc[0]
    (panel,) = board.panels
    assert panel["has_image"]
    assert panel["lesion_id"] == row["lesion_id"] and panel["location"] == row["location"]
    assert panel["score_text"] == f"{row['ct_time_score']:.3f}" and panel["status"] == row["ct_time_status"]
    assert panel["volume_text"] == f"{row['original_shape_MeshVolume'] / 1000:.1f} cm³"
    drawn = "\n".join(board.texts())
    for text in panel["texts"] + [row["lesion_id"], f"{row['ct_time_score']:.3f}", row["ct_time_status"].upper(),
                                  panel["volume_text"]]:
        assert text in drawn
    patient = patients[(patients["patient_id"] == "TREND") & (patients["timepoint"] == "BS")].iloc[0]
    for name in ("min", "median", "mean", "max"):
        assert board.summary[name] == f"{float(patient[f'ct_time_{name}']):.3f}"
        assert board.summary[f"status_{name}"] == patient[f"status_{name}"]
    assert board.summary["Total tumour volume"] == f"{float(patient['total_volume_mm3']) / 1000:.1f} cm³"
    assert board.summary["Heterogeneity"] == "single lesion"
    # the demo reference is flagged prominently, in the banner
    assert any(w.startswith("NOT CLINICALLY CALIBRATED") for w in board.warnings)
    assert any("NOT CLINICALLY CALIBRATED" in t for t in board.texts())
    banner = board.figure.findobj(lambda a: isinstance(a, Rectangle) and a.get_gid() == "warnings")
    assert len(banner) == 1 and banner[0].get_facecolor()[0] > 0.7
    # two time points: the trend plot is drawn with both
    trend = [ax for ax in board.figure.axes if ax.get_gid() == "trend"]
    history = patients[patients["patient_id"] == "TREND"]
    assert len(trend) == 1 and [t.get_text() for t in trend[0].get_xticklabels()] == [
        f"{t}\n{s.upper()}" for t, s in zip(history["timepoint"], history["status_min"])]
    (line,) = [line for line in trend[0].get_lines() if line.get_label() == "min"]
    assert np.allclose(line.get_ydata(), history["ct_time_min"].astype(float))


def test_slice_is_the_largest_cross_section_in_the_lesion_colour(run_dir, tables, sample_case):
    lesions, _ = tables
    board = _board(run_dir, "TREND", "BS")
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_case[1]))) > 0
    areas = mask.sum(axis=(1, 2))
    assert f"slice {int(np.argmax(areas)) + 1}/{mask.shape[0]}" in board.panels[0]["texts"][-1]
    image_axes = board.panels[0]["image_axes"]
    ct, fill = image_axes.get_images()
    assert ct.get_clim() == (-160.0, 240.0)  # W 400 / L 40
    score = tables[0].query("patient_id == 'TREND' and timepoint == 'BS'")["ct_time_score"].iloc[0]
    rgba = fill.get_array()
    assert np.allclose(rgba[rgba[..., 3] > 0][0], colormap.score_color(score) + (tumour_board.FILL_ALPHA,))
    assert int((rgba[..., 3] > 0).sum()) == int(areas.max())


def test_axial_plane_does_not_depend_on_voxel_order(sample_case):
    """The same patient stored with flipped and swapped axes gives the same displayed slice."""
    image = sitk.ReadImage(str(sample_case[0]))
    mask = sitk.ReadImage(str(sample_case[1]))
    reference = tumour_board.lesion_slice(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask), image)

    def reorder(volume):  # i reversed, i and j swapped: same voxels in space, other index order
        array = sitk.GetArrayFromImage(volume)[:, :, ::-1].transpose(0, 2, 1)
        direction = np.array(volume.GetDirection()).reshape(3, 3)
        moved = sitk.GetImageFromArray(np.ascontiguousarray(array))
        moved.SetSpacing([volume.GetSpacing()[1], volume.GetSpacing()[0], volume.GetSpacing()[2]])
        moved.SetOrigin(volume.TransformIndexToPhysicalPoint([volume.GetSize()[0] - 1, 0, 0]))
        moved.SetDirection(np.column_stack([direction[:, 1], -direction[:, 0], direction[:, 2]]).flatten().tolist())
        return moved

    moved_image, moved_mask = reorder(image), reorder(mask)
    assert np.allclose(moved_image.TransformIndexToPhysicalPoint([3, 5, 7]),
                       image.TransformIndexToPhysicalPoint([image.GetSize()[0] - 1 - 5, 3, 7]))
    moved = tumour_board.lesion_slice(sitk.GetArrayFromImage(moved_image), sitk.GetArrayFromImage(moved_mask),
                                      moved_image)
    assert moved.index == reference.index and moved.pixel_mm == reference.pixel_mm
    assert np.array_equal(moved.ct, reference.ct) and np.array_equal(moved.mask, reference.mask)


def test_many_lesions_layout_is_readable(run_dir, tables):
    lesions, _ = tables
    board = _board(run_dir, "MANY", "BS")
    rows = lesions[lesions["patient_id"] == "MANY"]
    assert len(board.panels) == len(rows) == 13
    assert [p["lesion_id"] for p in board.panels] == list(rows["lesion_id"])
    for panel, row in zip(board.panels, rows.to_dict("records")):
        assert panel["location"] == row["location"]
        if not row["error"]:
            assert panel["score_text"] == f"{row['ct_time_score']:.3f}"
            assert panel["status"] == row["ct_time_status"]
    layout = board.layout
    assert layout["columns"] * layout["rows"] >= 13 and layout["image_side"] >= tumour_board.MIN_IMAGE_SIDE - 0.1
    width, height = layout["size"]
    assert width * tumour_board.DPI >= 1600 and 0.6 < width / height < 1.6
    assert _overlaps(_boxes(board, "axes")) == []
    assert _overlaps(_boxes(board, "text")) == []
    renderer = board.figure.canvas.get_renderer()
    for panel in board.panels:  # captions stay under their own image
        image = panel["image_axes"].get_window_extent(renderer)
        assert all(image.x0 - 1 <= t.get_window_extent(renderer).x0 and t.get_window_extent(renderer).x1 <= image.x1 + 1
                   for t in panel["caption"])


def test_failed_lesion_is_shown_with_its_reason(run_dir, tables):
    lesions, _ = tables
    row = lesions[lesions["lesion_id"] == AIR_LESION].iloc[0]
    assert row["error"] and not np.isfinite(row["ct_time_score"])
    board = _board(run_dir, "MANY", "BS")
    panel = next(p for p in board.panels if p["lesion_id"] == AIR_LESION)
    assert panel["score_text"] == "FAILED" and panel["error"] == row["error"] and panel["has_image"]
    drawn = "\n".join(board.texts())
    assert "FAILED" in drawn and " ".join(row["error"].split())[:20] in " ".join(drawn.split())
    fill = panel["image_axes"].get_images()[1].get_array()
    assert np.allclose(fill[fill[..., 3] > 0][0][:3], colormap.FAILED_COLOR)
    assert board.summary["Lesions"] == f"{len(board.panels) - 1} scored, 1 failed"


def test_unreadable_study_gets_a_text_panel(run_dir, tables):
    lesions, _ = tables
    row = lesions[lesions["patient_id"] == "BROKEN"].iloc[0]
    board = _board(run_dir, "BROKEN", "BS")
    (panel,) = board.panels
    assert not panel["has_image"] and panel["error"] == row["error"]
    assert "No mask to show" in board.texts()
    assert _overlaps(_boxes(board, "text")) == []


def test_missing_ct_keeps_scores_and_says_why(run_dir, tables, tmp_path):
    lesions, _ = tables
    moved = tmp_path / "moved"
    moved.mkdir()
    copy = lesions.copy()
    copy["image"] = str(tmp_path / "gone.nii.gz")
    copy.to_csv(moved / "lesions.csv", index=False)
    (moved / "patients.csv").write_bytes((run_dir / "patients.csv").read_bytes())
    (png,) = tumour_board.write_run_boards(moved, patient="TREND")[:1]
    assert png.name == "TREND_BS_board.png" and png.exists()
    board = _board(moved, "TREND", "BS")
    (panel,) = board.panels
    row = lesions.query("patient_id == 'TREND' and timepoint == 'BS'").iloc[0]
    assert not panel["has_image"] and panel["score_text"] == f"{row['ct_time_score']:.3f}"
    assert "No image to show" in board.texts()
    assert str(tmp_path / "gone.nii.gz") in "".join(board.texts())  # the path, however it is wrapped


def test_cli_report_writes_deterministic_pngs(run_dir, tables, capsys):
    assert commands.main(["report", str(run_dir), "--patient", "TREND", "--pdf"]) == 0
    names = sorted(p.name for p in run_dir.glob("TREND_*_board.*"))
    assert names == ["TREND_BS_board.pdf", "TREND_BS_board.png", "TREND_FU_board.pdf", "TREND_FU_board.png"]
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.glob("TREND_*_board.*")}
    assert commands.main(["report", str(run_dir), "--patient", "TREND", "--pdf"]) == 0
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.glob("TREND_*_board.*")} == first
    png = sitk.ReadImage(str(run_dir / "TREND_BS_board.png"))
    assert png.GetWidth() >= 1600 and math.isclose(png.GetWidth() / png.GetHeight(), 11.69 / 8.27, rel_tol=0.01)
    assert commands.main(["report", str(run_dir), "--patient", "NOBODY"]) == EXIT_USAGE
    assert "NOBODY" in capsys.readouterr().err
