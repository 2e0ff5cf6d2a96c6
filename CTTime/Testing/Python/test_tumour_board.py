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
    assert any(f"slice {int(np.argmax(areas)) + 1}/{mask.shape[0]}" in text for text in board.panels[0]["texts"])
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
    assert board.summary["Lesions"] == f"{len(board.panels) - 1} of {len(board.panels)} scored, 1 failed"


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


# ---- honest and legible: what the aggregates stand on, warnings, texts over any anatomy, fills for every score ---

def _render(board):
    board.figure.canvas.draw()
    return np.asarray(board.figure.canvas.buffer_rgba())[..., :3].astype(float) / 255


def _luminance(pixels):
    return pixels @ np.array([0.299, 0.587, 0.114])


def test_texts_on_the_images_are_legible_over_any_anatomy(run_dir, tmp_path):
    """Scale bar, R / A and window letters: light text in a dark outline, so both light and dark pixels are under
    every text, on lung-window panels (bright) and soft-tissue ones alike."""
    board = _board(run_dir, "MANY", "BS")
    tumour_board.save(board, tmp_path / "many.png")
    pixels = _render(board)
    height = pixels.shape[0]
    checked = 0
    for panel in (p for p in board.panels if p["has_image"]):
        for text in panel["image_axes"].texts:
            assert text.get_color() == "white"
            (stroke,) = text.get_path_effects()
            assert stroke._gc["foreground"] == tumour_board.OUTLINE
            box = text.get_window_extent()
            under = _luminance(pixels[int(height - box.y1):int(height - box.y0), int(box.x0):int(box.x1)])
            assert under.max() > 0.9 and under.min() < 0.15, (panel["lesion_id"], text.get_text())
            checked += 1
    beyond = len(board.figure.findobj(lambda artist: artist.get_gid() == "outside-image-label"))
    assert checked - beyond == 4 * len([p for p in board.panels if p["has_image"]])  # "N mm", R, A, window


def test_statuses_are_never_cut(run_dir, tables, tmp_path):
    """Thirteen uninflamed lesions in the 4-column layout: "0.123  UNINFLAMED" whole under every image."""
    lesions = tables[0].copy()
    many = lesions["patient_id"] == "MANY"
    lesions.loc[many & (lesions["error"] == ""), ["ct_time_score", "ct_time_status"]] = [0.123, "uninflamed"]
    image, masks, reason = tumour_board.load_case(run_dir, lesions[many])
    board = tumour_board.board_figure("MANY", "BS", lesions, None, image, masks, image_reason=reason)
    tumour_board.save(board, tmp_path / "uninflamed.png")
    assert board.layout["columns"] == 4
    board.figure.canvas.draw()
    for panel in (p for p in board.panels if not p["error"]):
        assert "0.123  UNINFLAMED" in panel["texts"] and not any("…" in t for t in panel["texts"][1:2])
        image_box = panel["image_axes"].get_window_extent()
        assert all(t.get_window_extent().x1 <= image_box.x1 + 1 for t in panel["caption"])
    assert _overlaps(_boxes(board, "text")) == []


def _lesion_pixels(board, panel):
    """The lesion's drawn pixels (found by painting its fill magenta) and the width of the hatched rim in pixels."""
    ax = panel["image_axes"]
    _, fill = ax.get_images()
    original = fill.get_array().copy()
    solid = original.copy()
    solid[solid[..., 3] > 0] = (1, 0, 1, 1)
    fill.set_data(solid)
    marked = _render(board)
    fill.set_data(original)
    rim = tumour_board.HATCH_BAND * ax.get_window_extent().width
    return (marked[..., 0] > 0.95) & (marked[..., 1] < 0.05) & (marked[..., 2] > 0.95), int(math.ceil(rim))


def _fill_visibility(board, panel):
    """Mean over the lesion's rim (the band inside its outline) of how much the fill and hatch change the drawn
    pixels (largest channel difference, 0..1); the outline is hidden, so this is the fill and hatch alone."""
    from scipy import ndimage

    ax = panel["image_axes"]
    _, fill = ax.get_images()
    hatches = ax.findobj(lambda artist: artist.get_gid() == "hatch")
    for contour in (c for c in ax.collections if c.get_gid() != "hatch"):
        contour.set_visible(False)
    shown = _render(board)
    for artist in [fill] + hatches:
        artist.set_visible(False)
    plain = _render(board)
    fill.set_visible(True)
    lesion, rim = _lesion_pixels(board, panel)
    band = ndimage.binary_erosion(lesion, iterations=3) & ~ndimage.binary_erosion(lesion, iterations=rim - 2)
    return float(np.abs(shown - plain).max(axis=2)[band].mean())


@pytest.mark.parametrize("score", [0.0, 0.25, 0.45, 0.5, 0.55, 0.8, 1.0])
def test_the_fill_is_visible_for_every_score(run_dir, tables, score):
    """On the grey soft tissue of a real sarcoma: a dark-grey fill alone changed the pixels by 0.04 to 0.06 (barely
    seen); uninflamed lesions now have a rim hatched in a contrasting colour, and every score changes it by > 0.1."""
    lesions = tables[0].copy()
    trend = (lesions["patient_id"] == "TREND") & (lesions["timepoint"] == "BS")
    lesions.loc[trend, ["ct_time_score", "ct_time_status"]] = [score, "inflamed" if score > 0.5 else "uninflamed"]
    image, masks, reason = tumour_board.load_case(run_dir, lesions[trend])
    board = tumour_board.board_figure("TREND", "BS", lesions[trend], None, image, masks, image_reason=reason)
    (panel,) = board.panels
    assert bool(panel["image_axes"].findobj(lambda a: a.get_gid() == "hatch")) == (score <= 0.5)
    assert _fill_visibility(board, panel) > 0.1


def test_window_follows_the_lesion_location_or_the_option(run_dir, tables):
    board = _board(run_dir, "MANY", "BS")
    for panel in (p for p in board.panels if p["has_image"]):
        ct = panel["image_axes"].get_images()[0]
        expected = (-1350.0, 150.0) if panel["location"] == "lung" else (-160.0, 240.0)
        assert ct.get_clim() == expected and panel["window"] == ("lung" if panel["location"] == "lung" else "soft")
        label = "lung W1500 L-600" if panel["location"] == "lung" else "soft W400 L40"
        assert label in [t.get_text() for t in panel["image_axes"].texts]
    assert {p["location"] for p in board.panels} >= {"lung", "liver", "bone"}
    lesions, _ = tables
    rows = lesions[lesions["patient_id"] == "MANY"]
    image, masks, reason = tumour_board.load_case(run_dir, rows)
    soft = tumour_board.board_figure("MANY", "BS", lesions, None, image, masks, image_reason=reason, window="soft")
    assert {p["image_axes"].get_images()[0].get_clim() for p in soft.panels if p["has_image"]} == {(-160.0, 240.0)}
    assert commands.main(["board", str(run_dir), "--patient", "MANY", "--window", "lung"]) == 0
    with pytest.raises(SystemExit):
        commands.main(["board", str(run_dir), "--window", "bone"])


def test_the_minimum_lesion_incomplete_aggregates_and_soft_tissue_are_on_the_board(run_dir, tables):
    lesions, patients = tables
    patient = patients[patients["patient_id"] == "MANY"].iloc[0]
    board = _board(run_dir, "MANY", "BS")
    marked = [p for p in board.panels if p["sets_minimum"]]
    assert [p["lesion_id"] for p in marked] == [patient["min_lesion_id"]] and patient["min_lesion_id"]
    assert tumour_board.MINIMUM_MARK in marked[0]["texts"]
    assert {s.get_linewidth() for s in marked[0]["image_axes"].spines.values()} == {3.0}
    assert board.summary["minimum_set_by"] == patient["min_lesion_id"]
    assert any(text.startswith(f"* set by {patient['min_lesion_id']};") for text in board.texts())
    # 12 of 13 lesions scored: in the banner, the summary and the Lesions line
    assert patient["aggregate_coverage"] == "INCOMPLETE: 12 of 13 lesions scored"
    assert "INCOMPLETE: 12 of 13 lesions scored: the aggregates stand on the scored lesions only" in board.warnings
    assert board.summary["coverage"] in board.texts() and board.summary["Lesions"] == "12 of 13 scored, 1 failed"
    air = next(p for p in board.panels if p["lesion_id"] == AIR_LESION)
    assert air["soft_tissue_share"] == 0.0 and "⚠ soft tissue only 0% (< 50%)" in air["texts"]
    scored = [p for p in board.panels if not p["error"]]
    assert all(not any("soft tissue only" in t for t in p["texts"]) for p in scored)  # real tumour: > 50%
    complete = _board(run_dir, "TREND", "BS")
    assert "coverage" in complete.summary and complete.summary["coverage"] not in complete.texts()
    assert not any("INCOMPLETE" in w for w in complete.warnings)


def _trend_board(run_dir, tables, **values):
    """TREND's single real lesion at BS with ``values`` set in its lesions.csv row."""
    lesions = tables[0].copy()
    trend = (lesions["patient_id"] == "TREND") & (lesions["timepoint"] == "BS")
    for column, value in values.items():
        lesions[column] = lesions[column].astype(object)
        lesions.loc[trend, column] = value
    image, masks, reason = tumour_board.load_case(run_dir, lesions[trend])
    return tumour_board.board_figure("TREND", "BS", lesions[trend], None, image, masks, image_reason=reason)


def test_the_hatch_is_a_rim_and_the_lesion_interior_shows_its_tissue(run_dir, tables, tmp_path):
    """An uninflamed real sarcoma: the hatch marks a rim inside the outline and leaves the interior's tissue as
    the CT shows it (only the see-through fill tints it); the hatch was drawn over the whole lesion before."""
    from scipy import ndimage

    board = _trend_board(run_dir, tables, ct_time_score=0.25, ct_time_status="uninflamed")
    tumour_board.save(board, tmp_path / "rim.png")
    (panel,) = board.panels
    (hatch,) = panel["image_axes"].findobj(lambda artist: artist.get_gid() == "hatch")
    with_hatch = _render(board)
    hatch.set_visible(False)
    without = _render(board)
    lesion, rim = _lesion_pixels(board, panel)
    interior = ndimage.binary_erosion(lesion, iterations=rim + 4)
    band = lesion & ~ndimage.binary_erosion(lesion, iterations=rim)
    assert interior.sum() > 10 * rim ** 2  # a real interior, well inside the rim
    change = np.abs(with_hatch - without).max(axis=2)
    assert change[interior].max() < 0.02 and (change[band] > 0.3).mean() > 0.1, (change[interior].max(),
                                                                                  (change[band] > 0.3).mean())
    assert "hatched rim = uninflamed" in " ".join(board.texts())


def test_score_map_marks_are_labelled_and_never_overlap(run_dir, tables, tmp_path):
    """Twelve real lesions with close scores: each mark on the score map carries its lesion's ID, and no mark,
    label or whisker overlaps another lesion's."""
    board = _board(run_dir, "MANY", "BS")
    tumour_board.save(board, tmp_path / "marks.png")
    board.figure.canvas.draw()
    renderer = board.figure.canvas.get_renderer()
    (bar,) = [ax for ax in board.figure.axes if ax.get_gid() == "colorbar"]
    drawn = [(a.get_gid().split(":", 1)[1], a.get_window_extent(renderer)) for a in bar.texts + bar.lines
             if str(a.get_gid()).startswith(("mark", "whisker"))]
    scored = [p["lesion_id"] for p in board.panels if not p["error"]]
    assert sorted(t.get_text() for t in bar.texts if str(t.get_gid()).startswith("mark-label")) == sorted(scored)
    assert sorted(gid for gid, _ in drawn if gid) == sorted(scored * 2)  # a mark and a label each
    clashes = [(a, b) for a, b in _overlaps(drawn) if a != b]
    assert clashes == []
    heights = {round(box.y0) for gid, box in drawn}
    assert len(heights) > 2  # close scores: stacked, where they overlapped before
    assert _overlaps(_boxes(board, "text")) == []


def test_a_single_lesion_fills_the_page(run_dir, tables, tmp_path):
    """One real lesion: a larger image with its caption beside it, over the width of the page's lesion area."""
    board = _trend_board(run_dir, tables)
    tumour_board.save(board, tmp_path / "single.png")
    board.figure.canvas.draw()
    (panel,) = board.panels
    image = panel["image_axes"].get_window_extent()
    grid_width = tumour_board.PAGE_WIDTH - 2 * tumour_board.MARGIN - tumour_board.SUMMARY_WIDTH - \
        tumour_board.GUTTER
    assert board.layout["caption"] == "beside" and board.layout["image_side"] > tumour_board.MAX_IMAGE_SIDE + 0.5
    assert image.width / tumour_board.DPI >= 0.6 * grid_width
    captions = [t.get_window_extent() for t in panel["caption"]]
    assert all(box.x0 > image.x1 and box.y1 <= image.y1 + 1 for box in captions)  # beside it, from its top
    assert max(box.x1 for box in captions) <= board.figure.bbox.width - tumour_board.MARGIN * tumour_board.DPI
    assert _overlaps(_boxes(board, "text")) == []
    many = _board(run_dir, "MANY", "BS")
    assert many.layout["caption"] == "below"


def test_a_lesion_cut_by_the_image_edge_says_so(sample_case, tmp_path):
    """The real sarcoma's CT cut through the tumour: its panel says the lesion is cut, and the view beyond the
    CT is cross-hatched and labelled instead of black."""
    image, mask = (sitk.ReadImage(str(path)) for path in sample_case)
    i = np.nonzero(sitk.GetArrayFromImage(mask))[2]
    size = list(image.GetSize())
    size[0] = int(np.median(i))
    for name, volume in (("image", image), ("mask", mask)):
        sitk.WriteImage(sitk.RegionOfInterest(volume, size, [0, 0, 0]), str(tmp_path / f"cut_{name}.nii.gz"))
    pipeline.run([pipeline.Case("CUT", "BS", str(tmp_path / "cut_image.nii.gz"), str(tmp_path / "cut_mask.nii.gz"))],
                 tmp_path / "run", pipeline.Options(standardize=str(DEMO_REFERENCE)))
    board = _board(tmp_path / "run", "CUT", "BS")
    tumour_board.save(board, tmp_path / "cut.png")
    (panel,) = board.panels
    assert panel["cut_by_edge"] and panel["has_image"]
    drawn = " ".join(" ".join(board.texts()).split())
    assert tumour_board.CUT_NOTE in drawn and "beyond the image" in drawn
    labels = [t for t in panel["image_axes"].texts if t.get_gid() == "outside-image-label"]
    assert len(labels) == 1 and labels[0].get_position()[0] > np.median(i)  # in the strip right of the cut
    pixels = _render(board)
    box = labels[0].get_window_extent()
    strip = pixels[int(pixels.shape[0] - box.y1):int(pixels.shape[0] - box.y0), int(box.x1) + 5:int(box.x1) + 40]
    assert 0.1 < _luminance(strip).mean() < 0.4  # the grey cross-hatch, not black


def test_an_interval_that_crosses_the_threshold_shows_it(run_dir, tables, tmp_path):
    """A re-delineation interval whose upper end is 0.5003 does not print as "0.038–0.500" beside "flips"."""
    board = _trend_board(run_dir, tables, ct_time_score_low=0.038, ct_time_score_high=0.5003,
                         ct_time_status_robust="False")
    tumour_board.save(board, tmp_path / "interval.png")
    drawn = " ".join(board.texts())
    assert "flips under re-delineation" in drawn and "(0.038–0.5003)" in drawn and "0.500)" not in drawn
    assert [tumour_board.score_text(v) for v in (0.5003, 0.5, 0.4996, 0.50000001, 0.8)] == [
        "0.5003", "0.500", "0.500", ">0.500", "0.800"]
