"""Tumour-board figure: one print-ready picture per patient and time point.

For every lesion, the axial slice through its largest cross-section (lung window W 1500 / L -600 for lung lesions,
soft-tissue window W 400 / L 40 for the others, or one window for all) with the lesion outlined and filled in its
CT-TIME colour (uninflamed lesions also hatched, so that grey on grey CT stays visible; texts on the image carry a
dark outline, legible over bone and air), and its ID, location, volume, score and status (never cut); the lesion
that sets the patient's minimum is framed and says so; a soft-tissue share below 0.5 is flagged on its panel; a
lesion that failed is shown as failed with the reason. With score intervals (perturbed delineations,
``scoring.robustness``), each lesion says whether its status is robust or flips under re-delineation, and its
marker on the colour bar has a whisker over its interval. With the standardisation interval
(``scoring.reference_interval``) a second whisker, in its own colour and named in a legend, spans it; each lesion
says whether its status holds within the reference's uncertainty, a lesion outside the reference is flagged, and
an aggregate status that flips gets a ‡. Beside the lesions: the patient's aggregates and statuses
with what they stand on (lesions scored of lesions in the study, INCOMPLETE when some failed), heterogeneity,
total tumour volume, the standardisation, the colour bar of the score map and, with several time points, the
trend of the aggregates. A red banner repeats every warning: standardisation, parameter file, acquisition outside
the training domain, incomplete aggregates.

    board_figure(...)     a Board (matplotlib Figure + the texts it shows) from tables and in-memory images
    write_board(...)      board_figure + PNG (and PDF), written atomically; for the Slicer module
    write_run_boards(...) every board of a run folder (lesions.csv, patients.csv, run.json, *_cttime.seg.nrrd)

Rendering is headless (matplotlib's Agg canvas, no pyplot) and deterministic: fixed font, sizes and dpi, no
date in the image or its metadata.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import __version__
from ..core import colormap
from ..core.errors import CTTimeError
from ..core.files import atomic_path
from ..core.geometry import whole_mask
from ..core.lesions import is_proposed
from ..core.tags import robust_text
from ..core.timepoints import is_baseline
from ..io.tables import read_csv
from ..run import run_folder
from ..scoring import acquisition, aggregation
from ..scoring.soft_tissue import COLUMN as SHARE, SHARE_THRESHOLD

WINDOWS = {"soft": (400.0, 40.0), "lung": (1500.0, -600.0)}  # name -> (width, level) in HU
WINDOW_CHOICES = ("auto", "soft", "lung")  # auto: lung for lung lesions, soft tissue for the others
DPI = 200
PAGE_WIDTH, PAGE_HEIGHT = 11.69, 8.27  # A4 landscape, inches
MARGIN, SUMMARY_WIDTH, GUTTER = 0.3, 3.25, 0.3
CAPTION_HEIGHT, ROW_GAP, FOOTER_HEIGHT = 1.05, 0.2, 0.45
HEADER_HEIGHT, BANNER_LINE, TREND_HEIGHT = 0.95, 0.34, 1.1
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE, MAX_COLUMNS = 1.6, 4.2, 4
CAPTION_BESIDE = 2.3  # caption width beside a single lesion's image, inches
CHIP = 0.16  # colour swatch, inches
MARK_LEVEL = 0.2  # inches per level of lesion marks above the score map
FILL_ALPHA = 0.35
HATCH_BAND = 0.025  # width of the hatched band inside an uninflamed lesion's outline, as a share of the view
OUTSIDE_IMAGE = "#2b2b2b"  # the part of a lesion's view beyond the CT (cross-hatched)
LINE = 0.2  # inches per 9-point text line
TEXT_COLUMNS = (("patient_id", "timepoint", "lesion_id", "location", "error", "standardization", "image",
                 "segmentation", "ct_time_status", "heterogeneity", "warning", "acquisition_warning",
                 "aggregate_coverage", "min_lesion_id", "delineation")
                + tuple(f"status_{n}" for n in aggregation.AGGREGATES))
MINIMUM_MARK = "▼ sets the patient minimum"
REFERENCE_COLOUR = "#5e3c99"  # the standardisation interval's whisker and texts (apart from the score palette)
CUT_NOTE = "⚠ cut by the image edge: part of the lesion may lie outside the CT, and its score describes the rest"
PROPOSED_MARK = "◆ proposed from RECIST line: check mask"  # the caption of a lesion whose mask was proposed
PROPOSED_BADGE = "◆ PROPOSED"  # on its image
OUTLINE = "#111111"  # dark outline of every text drawn on a CT image
STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.linewidth": 0.8, "savefig.dpi": DPI,
         "pdf.fonttype": 42, "svg.hashsalt": "cttime", "path.simplify": False}


@dataclass
class Board:
    """A tumour-board figure and the texts it shows (what tests and callers can check against the tables)."""

    figure: object
    patient_id: str
    timepoint: str
    panels: list  # per lesion row: lesion_id, location, score(_text), status, error, texts, image_axes, caption
    summary: dict  # label -> text shown in the summary panel
    warnings: list
    layout: dict = field(default_factory=dict)  # columns, rows, image_side (inches), size (inches)

    def texts(self):
        """Every non-empty text drawn on the figure."""
        from matplotlib.text import Text

        return [t.get_text() for t in self.figure.findobj(Text) if t.get_visible() and t.get_text()]


@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


# ---------------------------------------------------------------- tables and images of a run folder


def read_table(path, what):
    """A run folder's CSV with its key and text columns as text (missing -> "")."""
    return read_csv(path, what, text=TEXT_COLUMNS,
                    hint="Give a folder written by `cttime score` or `cttime cohort`.")


def load_case(run_dir, rows):
    """The CT image and lesion masks (ID -> mask) of one patient and time point of a run, or (None, {}, reason)."""
    try:
        image, lesions = run_folder.read_study(run_dir, rows)
    except CTTimeError as exc:
        return None, {}, str(exc)
    return image, {lesion.lesion_id: lesion.mask for lesion in lesions}, ""


# ---------------------------------------------------------------- slices


def _axial_axes(image):
    """How to cut axial planes from a [k, j, i] array of ``image``.

    Returns (slice axis, row axis, column axis, flip rows, flip columns) as numpy axes, and the index axis (i, j, k
    = 0, 1, 2) along L, P and S. Displayed rows run anterior -> posterior, columns patient right -> left
    (radiological convention), whatever the image's direction cosines.
    """
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    dominant = [int(np.argmax(np.abs(direction[:, a]))) for a in range(3)]  # index axis -> L, P or S
    if sorted(dominant) != [0, 1, 2]:
        dominant = [0, 1, 2]
    axis_of = {lps: a for a, lps in enumerate(dominant)}
    flip = {lps: direction[lps, axis_of[lps]] < 0 for lps in range(3)}
    return 2 - axis_of[2], 2 - axis_of[1], 2 - axis_of[0], flip[1], flip[0], axis_of


@dataclass
class LesionSlice:
    """The CT slice through a lesion's largest axial cross-section, oriented for display (rows P, columns L)."""

    ct: np.ndarray
    mask: np.ndarray
    pixel_mm: tuple  # (row spacing, column spacing)
    index: int
    n_slices: int
    s_mm: float
    cut_by_edge: bool = False  # the mask reaches a face of the image: part of the lesion may lie outside it


def lesion_slice(image_array, mask_array, image, axes=None):
    """The largest axial cross-section of ``mask_array`` (numpy [k, j, i], same grid as ``image``), or None."""
    slice_axis, row_axis, col_axis, flip_rows, flip_cols, axis_of = axes or _axial_axes(image)
    in_plane = tuple(a for a in range(3) if a != slice_axis)
    areas = mask_array.sum(axis=in_plane)
    if not areas.any():
        return None
    index = int(np.argmax(areas))

    def planar(volume):
        plane = np.take(volume, index, axis=slice_axis)
        remaining = [a for a in range(3) if a != slice_axis]
        if remaining.index(row_axis) == 1:
            plane = plane.T
        plane = plane[::-1] if flip_rows else plane
        return plane[:, ::-1] if flip_cols else plane

    spacing = image.GetSpacing()
    voxel = [0, 0, 0]
    voxel[axis_of[2]] = index
    s_mm = float(image.TransformIndexToPhysicalPoint(voxel)[2])
    faces = (mask_array[0], mask_array[-1], mask_array[:, 0], mask_array[:, -1], mask_array[:, :, 0],
             mask_array[:, :, -1])
    return LesionSlice(planar(image_array), planar(mask_array).astype(bool),
                       (spacing[axis_of[1]], spacing[axis_of[0]]), index, int(mask_array.shape[slice_axis]), s_mm,
                       any(face.any() for face in faces))


# ---------------------------------------------------------------- text helpers


def _finite(value):
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def score_text(value):
    """3 decimals; more (up to 6, then ">0.500") when a score above the threshold would round to it, so that
    "0.5003" never prints as an uninflamed-looking "0.500"."""
    if not _finite(value):
        return "-"
    value, digits = float(value), 3
    while value > colormap.THRESHOLD and round(value, digits) <= colormap.THRESHOLD and digits < 6:
        digits += 1
    if value > colormap.THRESHOLD and round(value, digits) <= colormap.THRESHOLD:
        return f">{colormap.THRESHOLD:.3f}"
    return f"{value:.{digits}f}"


def volume_text(mm3):
    return f"{float(mm3) / 1000.0:.1f} cm³" if _finite(mm3) else "-"


@lru_cache(maxsize=None)
def _renderer():
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(10, 10, 72)  # 72 dpi: one pixel per point


@lru_cache(maxsize=4096)
def text_width(text, size, bold=False):
    """Width in inches of ``text`` drawn at ``size`` points in the board's font."""
    from matplotlib.font_manager import FontProperties

    font = FontProperties(family=STYLE["font.family"], size=size, weight="bold" if bold else "normal")
    return _renderer().get_text_width_height_descent(text, font, ismath=False)[0] / 72.0


def _fit(text, width_in, size, bold=False):
    """``text`` cut with an ellipsis to what fits ``width_in`` inches at ``size`` points."""
    text = str(text)
    if text_width(text, size, bold) <= width_in:
        return text
    while len(text) > 1 and text_width(text + "…", size, bold) > width_in:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(text, width_in, size, max_lines):
    """Lines of ``text`` that fit ``width_in`` inches; beyond ``max_lines`` the last line ends with an ellipsis."""
    lines = []
    for word in " ".join(str(text).split()).split(" "):
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and text_width(candidate, size) <= width_in:
            lines[-1] = candidate
            continue
        while text_width(word, size) > width_in and len(word) > 1:  # a long path: break it where it must
            cut = max(n for n in range(1, len(word)) if n == 1 or text_width(word[:n], size) <= width_in)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    lines = lines or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _fit(lines[-1] + " …", width_in, size)
        if not lines[-1].endswith("…"):
            lines[-1] += "…"
    return lines


def _halo(rgb):
    """Black or white, whichever stands out against ``rgb``."""
    return "black" if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 0.5 else "white"


def _status_label(status):
    return str(status).upper() if status else ""


def window_name(location, choice="auto"):
    """The window a lesion is shown in: ``choice`` (soft or lung), or for auto the lung window for lung lesions."""
    if choice not in WINDOW_CHOICES:
        raise CTTimeError(f"Unknown window {choice!r}; use one of {', '.join(WINDOW_CHOICES)}.", "input")
    if choice != "auto":
        return choice
    return "lung" if str(location) == "lung" else "soft"


def _outlined():
    """Text props for text over a CT image: white letters in a dark outline, legible over air, tissue and bone."""
    from matplotlib import patheffects

    return {"color": "white", "path_effects": [patheffects.withStroke(linewidth=2.2, foreground=OUTLINE)]}


def _fitting_size(text, width_in, sizes, bold=False):
    """The largest of ``sizes`` at which ``text`` fits ``width_in`` inches, or None."""
    return next((size for size in sizes if text_width(text, size, bold) <= width_in), None)


def _shrunk(text, width_in, size, props, smallest=6.0):
    """A caption line that keeps all its words: ``text`` at the largest size from ``size`` down to ``smallest``
    that fits ``width_in``, cut only if even that does not fit."""
    bold = props.get("fontweight") == "bold"
    sizes = [size - 0.5 * step for step in range(int((size - smallest) / 0.5) + 1)]
    fitted = _fitting_size(text, width_in, sizes, bold)
    return (text if fitted else _fit(text, width_in, smallest, bold)), dict(props, fontsize=fitted or smallest)


# ---------------------------------------------------------------- layout


class Block:
    """A place on the page, in inches from the page's top-left corner (y down), for texts and patches.

    They are figure-level artists (no axes: cheaper), and stay put when the page grows (``_grow``).
    """

    def __init__(self, fig, x, y, gid=None):
        from matplotlib.transforms import Affine2D, ScaledTranslation

        self.fig, self.gid = fig, gid
        self.transform = (Affine2D().translate(x, y).scale(1, -1) + fig.dpi_scale_trans
                          + ScaledTranslation(0, 1, fig.transFigure))

    def text(self, x, y, text, **props):
        return self.fig.text(x, y, text, transform=self.transform, va=props.pop("va", "top"), gid=self.gid, **props)

    def rectangle(self, x, y, width, height, **props):
        from matplotlib.patches import Rectangle

        return self.fig.add_artist(Rectangle((x, y), width, height, transform=self.transform, gid=self.gid, **props))


def _inch_axes(fig, x, y, width, height, size):
    """Axes placed in inches from the page's top-left corner."""
    fig_w, fig_h = size
    return fig.add_axes([x / fig_w, 1 - (y + height) / fig_h, width / fig_w, height / fig_h])


def grid_layout(n_panels, grid_width, body_height):
    """(columns, rows, image side in inches): the largest lesion images that fit; the page grows beyond 8."""
    best = None
    for columns in range(1, MAX_COLUMNS + 1):
        rows = max(1, math.ceil(n_panels / columns))
        side = min(grid_width / columns - 0.2, body_height / rows - CAPTION_HEIGHT - ROW_GAP, MAX_IMAGE_SIDE)
        if best is None or side > best[2] + 1e-9:
            best = (columns, rows, side)
    if best[2] < MIN_IMAGE_SIDE:
        columns = min(MAX_COLUMNS, max(1, n_panels))
        best = (columns, math.ceil(n_panels / columns), min(grid_width / columns - 0.2, MAX_IMAGE_SIDE))
    return best


# ---------------------------------------------------------------- drawing


def _draw_slice(ax, lesion, rgb, window="soft", hatched=False):
    """The CT around the lesion (view 3x its extent, at least 90 mm) in ``window``, its fill (a band inside the
    outline hatched when ``hatched``: grey on grey CT needs a pattern to be seen, and the interior stays readable)
    and outline, a scale bar; texts in a dark outline. Where the view reaches beyond the image: a grey
    cross-hatch, labelled, not a black strip that could pass for anatomy."""
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle
    from scipy import ndimage

    (row_mm, col_mm), mask = lesion.pixel_mm, lesion.mask
    rr, cc = np.nonzero(mask)
    centre = ((cc.min() + cc.max() + 1) / 2 * col_mm, (rr.min() + rr.max() + 1) / 2 * row_mm)
    view = max(3.0 * (cc.max() - cc.min() + 1) * col_mm, 3.0 * (rr.max() - rr.min() + 1) * row_mm, 90.0)
    r0, r1 = (int(np.clip(np.floor((centre[1] + sign * view / 2) / row_mm) + sign, 0, mask.shape[0]))
              for sign in (-1, 1))
    c0, c1 = (int(np.clip(np.floor((centre[0] + sign * view / 2) / col_mm) + sign, 0, mask.shape[1]))
              for sign in (-1, 1))
    r1, c1 = r1 + 1, c1 + 1
    ct, mask = lesion.ct[r0:r1, c0:c1], mask[r0:r1, c0:c1]
    extent = (c0 * col_mm, (c0 + ct.shape[1]) * col_mm, (r0 + ct.shape[0]) * row_mm, r0 * row_mm)
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor(OUTSIDE_IMAGE)
    outside = Rectangle((centre[0] - view / 2, centre[1] - view / 2), view, view, facecolor=OUTSIDE_IMAGE,
                        edgecolor="#6e6e6e", hatch="xx", linewidth=0, zorder=0, gid="outside-image")
    ax.add_patch(outside)
    width, level = WINDOWS[window]
    ax.imshow(ct, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, extent=extent,
              interpolation="bilinear")
    overlay = np.zeros(mask.shape + (4,))
    overlay[mask] = rgb + (FILL_ALPHA,)
    ax.imshow(overlay, extent=extent, interpolation="nearest")
    xs = (np.arange(c0, c0 + mask.shape[1]) + 0.5) * col_mm
    ys = (np.arange(r0, r0 + mask.shape[0]) + 0.5) * row_mm
    halo = _halo(rgb)
    if hatched:  # only a band inside the outline: the hatch shows where the lesion is, not over its tissue
        band_px = max(1, int(round(HATCH_BAND * view / min(row_mm, col_mm))))
        band = mask & ~ndimage.binary_erosion(mask, iterations=band_px)
        hatch = ax.contourf(xs, ys, band.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
        hatch.set(edgecolor=halo, linewidth=0.0)
        hatch.set_gid("hatch")
    contour = ax.contour(xs, ys, mask.astype(float), levels=[0.5], colors=[rgb], linewidths=1.4)
    contour.set(path_effects=[patheffects.withStroke(linewidth=3.0, foreground=halo)])
    ax.set_xlim(centre[0] - view / 2, centre[0] + view / 2)
    ax.set_ylim(centre[1] + view / 2, centre[1] - view / 2)
    ax.set_aspect("equal", adjustable="box")
    bar = next(v for v in (5, 10, 20, 50, 100, 200, 500) if v >= view / 5)
    x0, y0 = centre[0] - view / 2 + view * 0.06, centre[1] + view / 2 - view * 0.07
    ax.plot([x0, x0 + bar], [y0, y0], color="white", linewidth=2.0, solid_capstyle="butt",
            path_effects=[patheffects.withStroke(linewidth=4.0, foreground=OUTLINE)])
    ax.text(x0 + bar / 2, y0 - view * 0.025, f"{bar} mm", ha="center", va="bottom", fontsize=7, **_outlined())
    ax.text(0.02, 0.5, "R", transform=ax.transAxes, ha="left", va="center", fontsize=7, **_outlined())
    ax.text(0.5, 0.98, "A", transform=ax.transAxes, ha="center", va="top", fontsize=7, **_outlined())
    ax.text(0.97, 0.03, f"{window} W{width:.0f} L{level:.0f}", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=6.5, gid="window", **_outlined())
    _label_outside(ax, extent, centre, view)


def _label_outside(ax, extent, centre, view):
    """"beyond the image" in the widest strip of the view outside the CT, when one is wide enough for it."""
    x0, x1, y1, y0 = extent  # y grows downwards (posterior)
    left, right = centre[0] - view / 2, centre[0] + view / 2
    top, bottom = centre[1] - view / 2, centre[1] + view / 2
    strips = [(x0 - left, ((left + x0) / 2, centre[1]), 90), (right - x1, ((x1 + right) / 2, centre[1]), 90),
              (y0 - top, (centre[0], (top + y0) / 2), 0), (bottom - y1, (centre[0], (y1 + bottom) / 2), 0)]
    size, (x, y), rotation = max(strips, key=lambda strip: strip[0])
    if size > 0.07 * view:
        ax.text(x, y, "beyond the image", ha="center", va="center", rotation=rotation, fontsize=6.5,
                gid="outside-image-label", **_outlined())


def _draw_lesion(fig, row, lesion, x, y, side, size, panel, caption_at=(0.0, None)):
    """One lesion panel: image (or a text box) and a caption below it (or at ``caption_at``, inches from the
    image's top-left corner); the lesion that sets the patient's minimum gets a thick frame."""
    score = row.get("ct_time_score")
    failed = bool(row.get("error")) or not _finite(score)
    rgb = colormap.score_color(float(score) if _finite(score) else None)
    if lesion is not None:
        ax = _inch_axes(fig, x, y, side, side, size)
        ax.set_gid(f"lesion-image:{panel['lesion_id']}")
        _draw_slice(ax, lesion, rgb, panel["window"], hatched=not failed and float(score) <= colormap.THRESHOLD)
        if panel["sets_minimum"]:
            for spine in ax.spines.values():
                spine.set(linewidth=3.0, color="black")
        if panel["proposed"]:
            ax.text(0.03, 0.97, PROPOSED_BADGE, transform=ax.transAxes, ha="left", va="top", fontsize=7.5,
                    fontweight="bold", gid="proposed", **_outlined())
        panel["image_axes"] = ax
    else:
        box = Block(fig, x, y, f"lesion-text:{panel['lesion_id']}")
        box.rectangle(0, 0, side, side, facecolor="#fbf3c8" if failed else "#eeeeee",
                      edgecolor="#8a7400" if failed else "#777777", linewidth=1.0, zorder=0.5)
        reason = panel["image_reason"]
        lines = ["No mask to show" if failed else "No image to show"] + (
            ["(reason below)"] if reason == panel["error"] else
            _wrap(reason, side - 0.2, 8, max(1, int((side - 0.4) / 0.17) - 1)))
        for number, line in enumerate(lines):
            box.text(0.1, 0.15 + number * 0.17, line, fontsize=8, fontweight="bold" if number == 0 else "normal")
    caption = Block(fig, x + caption_at[0], y + (side + 0.04 if caption_at[1] is None else caption_at[1]),
                    f"lesion-caption:{panel['lesion_id']}")
    panel["caption"] = []
    top = 0.06
    for text, props in panel.pop("lines"):
        props = dict(props)
        left = 0.0
        if props.pop("chip", False):
            caption.rectangle(0, top + 0.015, CHIP, 0.14, facecolor=rgb, edgecolor="black", linewidth=0.6)
            left = CHIP + 0.06
        panel["caption"].append(caption.text(left, top, text, **props))
        top += props["fontsize"] * 1.5 / 72
    panel.pop("image_reason")


def _lesion_panel(row, width, lesion, image_reason, minimum_id="", window="auto"):
    """The texts of one lesion panel, from its lesions.csv row (``minimum_id``: the lesion that sets the patient's
    minimum). The score and status line shrinks to fit, and breaks in two rather than cut the status."""
    lesion_id = row.get("lesion_id") or "(whole study)"
    location = row.get("location") or ""
    score = row.get("ct_time_score")
    error = row.get("error") or ("" if _finite(score) else "no CT-TIME score")
    status = "" if error else str(row.get("ct_time_status") or "")
    sets_minimum = bool(row.get("lesion_id")) and row.get("lesion_id") == minimum_id and not error
    title = _fit(f"{lesion_id} · {location}" if location else lesion_id, width, 10, bold=True)
    lines = [(title, {"fontsize": 10, "fontweight": "bold"})]
    if error:
        lines.append(("FAILED", {"fontsize": 10, "fontweight": "bold", "color": "#8a6d00", "chip": True}))
        lines += [(line, {"fontsize": 7.5}) for line in _wrap(error, width, 7.5, 4)]
    else:
        color = colormap.INFLAMED_HEX if status == "inflamed" else "#333333"
        text = f"{score_text(score)}  {_status_label(status)}"
        size = _fitting_size(text, width - CHIP - 0.06, (10, 9.5, 9, 8.5, 8), bold=True)
        if size:
            lines.append((text, {"fontsize": size, "fontweight": "bold", "chip": True, "color": color}))
        else:
            lines.append((score_text(score), {"fontsize": 10, "fontweight": "bold", "chip": True, "color": color}))
            lines.append((_status_label(status), {"fontsize": _fitting_size(_status_label(status), width, (
                10, 9, 8, 7, 6, 5), bold=True) or 5, "fontweight": "bold", "color": color}))
        if sets_minimum:
            lines.append(_shrunk(MINIMUM_MARK, width, 8.5, {"fontweight": "bold"}))
        details = []
        if _finite(row.get(aggregation.VOLUME)):
            details.append(f"vol {volume_text(row[aggregation.VOLUME])}")
        if _finite(row.get("longest_axial_diameter_mm")):
            details.append(f"Ø {float(row['longest_axial_diameter_mm']):.0f} mm")
        if details:
            lines.append((_fit(" · ".join(details), width, 8.5), {"fontsize": 8.5}))
        if lesion is not None:
            lines.append((_fit(f"slice {lesion.index + 1}/{lesion.n_slices} · S {lesion.s_mm:.1f} mm", width, 7.5),
                          {"fontsize": 7.5, "color": "#555555"}))
        if lesion is not None and lesion.cut_by_edge:
            lines += [(text, {"fontsize": 7.5, "fontweight": "bold", "color": "#b35900"})
                      for text in _wrap(CUT_NOTE, width, 7.5, 3)]
        robustness = _robustness_text(row)
        if robustness:  # shrunk to one line down to 7 points, else broken over lines: the interval is never cut
            props = {"fontweight": "bold", "color": "#333333" if robustness.startswith("robust") else "#8a6d00"}
            text, props = _shrunk(robustness, width, 8, props, smallest=7)
            lines += [(text, props)] if not text.endswith("…") else [
                (line, dict(props, fontsize=7.5)) for line in _wrap(robustness, width, 7.5, 3)]
        reference = _reference_text(row)
        if reference:
            lines.append(_shrunk(reference, width, 8, {"fontweight": "bold", "color": REFERENCE_COLOUR
                                                       if reference.endswith("robust") else "#8a6d00"}))
        if str(row.get("outside_reference")).strip().lower() in ("true", "1", "1.0"):
            lines.insert(2, _shrunk(_outside_text(row), width, 8.5, {"fontweight": "bold", "color": "#b35900"}))
    proposed = is_proposed(row.get("delineation"))
    if proposed:
        lines.insert(1, _shrunk(PROPOSED_MARK, width, 8, {"fontweight": "bold", "color": "#1f4e99"}))
    share = row.get(SHARE)
    if _finite(share) and float(share) < SHARE_THRESHOLD:
        lines.insert(2, _shrunk(f"⚠ soft tissue only {float(share):.0%} (< {SHARE_THRESHOLD:.0%})", width, 8.5,
                                {"fontweight": "bold", "color": "#b35900"}))
    return {"lesion_id": row.get("lesion_id") or "", "location": location,
            "score": float(score) if _finite(score) else None, "status": status, "error": error,
            "score_text": score_text(score) if not error else "FAILED",
            "volume_text": volume_text(row.get(aggregation.VOLUME)), "has_image": lesion is not None,
            "sets_minimum": sets_minimum, "proposed": proposed, "window": window_name(location, window),
            "cut_by_edge": bool(lesion is not None and lesion.cut_by_edge),
            "soft_tissue_share": float(share) if _finite(share) else None,
            "lines": lines, "texts": [text for text, _ in lines], "image_reason": image_reason}


def _robustness_text(row):
    """"robust ..." or "uncertain: flips under re-delineation ..." with the interval, or "" without one."""
    robust = robust_text(row.get("ct_time_status_robust"))
    low, high = row.get("ct_time_score_low"), row.get("ct_time_score_high")
    if not robust or not (_finite(low) and _finite(high)):
        return ""
    interval = f"{score_text(low)}–{score_text(high)}"
    return f"robust ({interval})" if robust == "robust" else f"uncertain: flips under re-delineation ({interval})"


def _reference_text(row):
    """"reference low–high: robust" or "reference low–high: uncertain", or "" without the interval."""
    robust = robust_text(row.get("ct_time_status_reference_robust"))
    low, high = row.get("ct_time_score_ref_low"), row.get("ct_time_score_ref_high")
    if not robust or not (_finite(low) and _finite(high)):
        return ""
    return f"reference {score_text(low)}–{score_text(high)}: {robust}"


def _outside_text(row):
    """"⚠ outside the reference: <feature> z +3.8" for the signature feature furthest outside."""
    found = {}
    for column, value in row.items():
        if str(column).startswith("z_") and _finite(value):
            found[column[2:]] = float(value)
    name = max(found, key=lambda feature: abs(found[feature]), default=None)
    short = name.rsplit("_", 1)[-1] if name else ""
    return f"⚠ outside the reference: {short} z {found[name]:+.1f}" if name else "⚠ outside the reference"


def _summary_lines(patient):
    """(label, value) rows of the summary panel, from the patient's patients.csv row."""
    rows = [("Lesions", f"{int(float(patient['n_scored']))} of {int(float(patient['n_lesions']))} scored, "
                        f"{int(float(patient['n_failed']))} failed")]
    sd = patient.get("ct_time_sd")
    heterogeneity = str(patient.get("heterogeneity") or "-")
    rows.append(("Heterogeneity", f"{heterogeneity} (SD {sd:.3f})" if _finite(sd) else heterogeneity))
    rows.append(("Total tumour volume", volume_text(patient.get("total_volume_mm3"))))
    return rows


def _draw_summary(fig, patient, lesion_rows, warnings, x, y, width, size, history, timepoint):
    """Summary column: aggregates, counts, volume, standardisation, colour bar, trend. Returns (summary, bottom)."""
    summary = {}
    used = "; ".join(part for part in str(patient.get("standardization") or "").split("; ") if part.strip())
    standardization = _wrap(used or "-", width - 0.24, 7.5, 6)
    ax = Block(fig, x, y, "summary")
    line = 0.1
    ax.text(0.12, line, "Patient summary", fontsize=12, fontweight="bold")
    line += 0.3
    coverage = str(patient.get("aggregate_coverage") or "")
    summary["coverage"] = coverage
    if coverage and not _is_complete(patient):  # complete: the Lesions line below says it
        ax.text(0.12, line, _fit(coverage, width - 0.24, 9, bold=True), fontsize=9, fontweight="bold",
                color="#c00000")
        line += LINE + 0.04
    ax.text(0.12, line, "Aggregate", fontsize=8, color="#555555")
    ax.text(1.55, line, "CT-TIME", fontsize=8, color="#555555")
    ax.text(2.2, line, "Status", fontsize=8, color="#555555")
    line += LINE
    flips = uncertain = False
    for name in ("min", "median", "mean", "max"):
        value, status = patient.get(f"ct_time_{name}"), str(patient.get(f"status_{name}") or "")
        label = "min *" if name == "min" else name
        summary[name] = score_text(value)
        summary[f"status_{name}"] = status
        summary[f"status_{name}_robust"] = robust_text(patient.get(f"status_{name}_robust"))
        flips = flips or summary[f"status_{name}_robust"] == "uncertain"
        rgb = colormap.score_color(float(value) if _finite(value) else None)
        if _finite(value):
            ax.rectangle(1.3, line + 0.02, CHIP, 0.14, facecolor=rgb, edgecolor="black", linewidth=0.6)
        bold = "bold" if name == "min" else "normal"
        ax.text(0.12, line, label, fontsize=10, fontweight=bold)
        ax.text(1.55, line, summary[name], fontsize=10, fontweight=bold)
        summary[f"status_{name}_reference_robust"] = robust_text(patient.get(f"status_{name}_reference_robust"))
        uncertain = uncertain or summary[f"status_{name}_reference_robust"] == "uncertain"
        dagger = (" †" if summary[f"status_{name}_robust"] == "uncertain" else "") + (
            " ‡" if summary[f"status_{name}_reference_robust"] == "uncertain" else "")
        ax.text(2.2, line, (_status_label(status) if status else "-") + dagger, fontsize=9, fontweight=bold,
                color=colormap.INFLAMED_HEX if status == "inflamed" else "#333333")
        line += LINE + 0.01
    minimum = str(patient.get("min_lesion_id") or "")
    summary["minimum_set_by"] = minimum
    note = ((f"* set by {minimum}; " if minimum else "* ") + "the minimum over lesions: best PFS predictor in the paper"
            + (" · ‡ status flips within the reference's uncertainty" if uncertain else ""))
    for number, text in enumerate(_wrap(note, width - 0.24, 7, 3)):
        line += LINE - 0.06 if number else 0
        ax.text(0.12, line, text, fontsize=7, style="italic", color="#555555")
    line += LINE + 0.02
    if flips:
        ax.text(0.12, line - 0.06, "† status flips under re-delineation of the lesions", fontsize=7, style="italic",
                color="#8a6d00")
        line += LINE - 0.02
    for label, value in _summary_lines(patient):
        summary[label] = value
        ax.text(0.12, line, label, fontsize=9, color="#333333")
        text, props = _shrunk(value, width - 1.7, 9, {"fontweight": "bold"}, smallest=7)
        ax.text(1.55, line, text, **props)
        line += LINE
    line += 0.04
    ax.text(0.12, line, "Standardisation", fontsize=9, color="#333333")
    line += LINE - 0.02
    summary["standardization"] = used
    for text in standardization:
        ax.text(0.12, line, text, fontsize=7.5)
        line += 0.16
    height = line + 0.06
    ax.rectangle(0, 0, width, height, facecolor="#f4f4f4", edgecolor="#bbbbbb", linewidth=0.8, zorder=0.5)
    bottom = _draw_colorbar(fig, lesion_rows, x, y + height + 0.2, width, size)
    if history is not None and len(history) > 1:
        bottom = _draw_trend(fig, history, timepoint, x, bottom + 0.1, width, size)
    summary["warnings"] = list(warnings)
    return summary, bottom


def _draw_colorbar(fig, lesion_rows, x, y, width, size):
    """The score map over 0..1, the 0.5 threshold marked, and a tick per lesion of this time point (with a whisker
    over its score interval, when it has one)."""
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize

    intervals = "ct_time_score_low" in lesion_rows and lesion_rows["ct_time_score_low"].map(_finite).any()
    references = "ct_time_score_ref_low" in lesion_rows and lesion_rows["ct_time_score_ref_low"].map(_finite).any()
    title = "CT-TIME score map (▼ lesions)" if intervals or references else \
        "CT-TIME score map (▼ this patient's lesions)"
    Block(fig, x, y, "colorbar-title").text(0, 0.02, title, fontsize=9, fontweight="bold")
    legend = [(text, colour) for shown, text, colour in (
        (intervals, "|–| re-delineation", "black"), (references, "|–| reference", REFERENCE_COLOUR)) if shown]
    right, key = width, Block(fig, x, y + 0.03, "interval-legend")
    for text, colour in reversed(legend):  # which whisker is which, right of the title
        key.text(right, 0, text, fontsize=7.5, color=colour, fontweight="bold", ha="right")
        right -= text_width(text, 7.5, bold=True) + 0.12
    marks = _mark_levels(lesion_rows, width - 0.2)
    levels = 1 + max((mark["level"] for mark in marks), default=0)
    bar_y = y + 0.2 + MARK_LEVEL * levels
    bar = _inch_axes(fig, x + 0.1, bar_y, width - 0.2, 0.22, size)
    bar.set_gid("colorbar")
    colorbar = ColorbarBase(bar, cmap=colormap.matplotlib_colormap(), norm=Normalize(0, 1), orientation="horizontal",
                            ticks=[0, 0.25, 0.5, 0.75, 1])
    colorbar.ax.tick_params(labelsize=8)
    colorbar.ax.axvline(colormap.THRESHOLD, color="black", linewidth=2.0)
    for mark in marks:  # in inches above the bar: a level per row of marks, the lesion's ID over its mark
        height = 0.07 + MARK_LEVEL * mark["level"]
        level_y = 1 + height / 0.22  # the bar is 0.22 inches high
        if mark["interval"]:
            whisker, = bar.plot(mark["interval"], [level_y, level_y], color="black", linewidth=1.0, marker="|",
                                markersize=6, clip_on=False)
            whisker.set_gid(f"whisker:{mark['lesion_id']}")
        if mark["reference"]:  # just under the mark's level, in the reference's colour
            whisker, = bar.plot(mark["reference"], [level_y - 0.045 / 0.22] * 2, color=REFERENCE_COLOUR,
                                linewidth=2.0, marker="|", markersize=5, clip_on=False)
            whisker.set_gid(f"reference-whisker:{mark['lesion_id']}")
        bar.plot([mark["score"]], [level_y], marker="v", linestyle="none", color="black", markersize=6,
                 clip_on=False, gid=f"mark:{mark['lesion_id']}")
        bar.text(mark["score"], 1 + (height + 0.05) / 0.22, mark["label"], ha="center", va="bottom", fontsize=6.5,
                 gid=f"mark-label:{mark['lesion_id']}", clip_on=False)
    labels = Block(fig, x, bar_y + 0.44, "colorbar-labels")
    labels.text(0.1, 0, "≤ 0.5 uninflamed", fontsize=8, color="#333333")
    labels.text(width - 0.1, 0, "> 0.5 inflamed", fontsize=8, ha="right", color=colormap.INFLAMED_HEX,
                fontweight="bold")
    return bar_y + 0.6


def _mark_levels(lesion_rows, bar_width):
    """The ▼ of each scored lesion on the score map with its ID, each put on the lowest level where neither it, its
    ID nor its interval whiskers overlap another's (``bar_width``: inches of the 0..1 bar)."""
    marks = []
    for row in lesion_rows.to_dict("records"):
        if not _finite(row.get("ct_time_score")):
            continue
        score, low, high = float(row["ct_time_score"]), row.get("ct_time_score_low"), row.get("ct_time_score_high")
        label = _fit(row.get("lesion_id") or "(whole study)", 1.0, 6.5)
        half = (max(text_width(label, 6.5), 0.1) / 2 + 0.04) / bar_width  # in score units
        interval = (float(low), float(high)) if _finite(low) and _finite(high) else None
        ref_low, ref_high = row.get("ct_time_score_ref_low"), row.get("ct_time_score_ref_high")
        reference = (float(ref_low), float(ref_high)) if _finite(ref_low) and _finite(ref_high) else None
        whiskers = [end for pair in (interval, reference) if pair for end in pair]
        left = min([score - half] + [end - 0.02 for end in whiskers])
        right = max([score + half] + [end + 0.02 for end in whiskers])
        marks.append({"lesion_id": row.get("lesion_id") or "", "label": label, "score": score,
                      "interval": interval, "reference": reference, "span": (left, right)})
    placed = []
    for mark in sorted(marks, key=lambda m: (m["score"], m["lesion_id"])):
        mark["level"] = next(level for level in range(len(marks) + 1) if not any(
            other["level"] == level and other["span"][0] < mark["span"][1] and mark["span"][0] < other["span"][1]
            for other in placed))
        placed.append(mark)
    return marks


def _draw_trend(fig, history, timepoint, x, y, width, size):
    """Aggregated scores over the patient's time points (the current one shaded), status of the minimum below; the
    plot gives up to half its height to keep the page A4 under a banner of several warnings."""
    plot = min(TREND_HEIGHT, max(TREND_HEIGHT / 2, size[1] - FOOTER_HEIGHT - y - 0.9))
    Block(fig, x, y, "trend-title").text(0, 0.02, "Trend over time points", fontsize=9, fontweight="bold")
    ax = _inch_axes(fig, x + 0.45, y + 0.3, width - 0.55, plot, size)
    ax.set_gid("trend")
    positions = np.arange(len(history))
    timepoints = list(history["timepoint"].astype(str))
    if timepoint in timepoints:
        current = timepoints.index(timepoint)
        ax.axvspan(current - 0.4, current + 0.4, color="#e4e4e4", zorder=0)
    ax.axhline(colormap.THRESHOLD, color="black", linestyle="--", linewidth=0.8)
    styles = {"min": ("-", 2.0, "o", 7), "median": ("-", 1.0, "s", 5), "mean": (":", 1.0, "D", 4.5),
              "max": ("-", 0.6, "^", 5)}
    for name, (linestyle, linewidth, marker, marker_size) in styles.items():
        values = history[f"ct_time_{name}"].astype(float).to_numpy()
        ax.plot(positions, values, linestyle=linestyle, linewidth=linewidth, color="#333333", label=name, zorder=2,
                marker=marker, markersize=marker_size, markerfacecolor="white", markeredgecolor="#333333")
        for position, value in zip(positions, values):
            if np.isfinite(value):
                ax.plot(position, value, marker=marker, markersize=marker_size, zorder=3, linestyle="none",
                        markerfacecolor=colormap.score_color(value), markeredgecolor="black", markeredgewidth=0.6)
    ax.set_xticks(positions)
    slot = (width - 0.6) / len(history)
    ax.set_xticklabels([f"{_fit(t, slot, 8)}\n{_fit(_status_label(s) or '-', slot, 6.5)}"
                        for t, s in zip(timepoints, history["status_min"].fillna(""))], fontsize=8)
    ax.set_xlim(-0.5, len(history) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.5, 1])
    ax.tick_params(labelsize=7)
    ax.set_ylabel("CT-TIME", fontsize=8)
    legend = fig.legend(*ax.get_legend_handles_labels(), fontsize=7, ncol=4, loc="upper center", frameon=False,
                        bbox_to_anchor=(x + width / 2, y + 0.3 + plot + 0.38),
                        bbox_transform=Block(fig, 0, 0).transform, handlelength=2.0, columnspacing=1.0,
                        borderaxespad=0)
    legend.set_gid("trend-legend")
    return y + 0.3 + plot + 0.6


def _is_complete(patient):
    return str(patient.get("aggregate_complete", "")).strip().lower() in ("true", "1", "1.0")


def _order_timepoints(history):
    """Baseline first, the others in the order of the table."""
    later = [not is_baseline(t) for t in history["timepoint"]]
    order = sorted(range(len(history)), key=lambda i: (later[i], i))
    return history.iloc[order].reset_index(drop=True)


def _warnings_of(rows, extra, patient):
    """The banner: the run's warnings, the standardisation's, the study's acquisition outside the training domain,
    aggregates that stand on an incomplete set of lesions."""
    found = [text.split(" - ", 1)[1] for text in rows["standardization"].astype(str) if " - " in text]
    acquired = [acquisition.warning_text(text) for text in rows["acquisition_warning"]]
    coverage = [] if _is_complete(patient) or not patient.get("aggregate_coverage") else [
        f"{patient['aggregate_coverage']}: the aggregates stand on the scored lesions only"
        if "INCOMPLETE" in str(patient["aggregate_coverage"]) else str(patient["aggregate_coverage"])]
    return list(dict.fromkeys([w for w in list(extra) + found + acquired + coverage if w]))


def board_figure(patient_id, timepoint, lesions, patients=None, image=None, masks=None, warnings=(),
                 image_reason="no CT image given", window="auto"):
    """The tumour-board figure of one patient at one time point.

    ``lesions``: lesions table (lesions.csv rows; other patients are ignored); ``patients``: patients table
    (patients.csv; default: aggregated from ``lesions``), whose other time points of this patient give the trend;
    ``image``: the CT (SimpleITK) and ``masks``: lesion ID -> binary mask (SimpleITK, on the image grid, CT-sized
    or cropped as ``inputs`` reads lesions);
    ``warnings``: extra warnings to show (those of the standardisation are taken from the rows);
    ``window``: auto (lung window for lung lesions, soft tissue for the others), soft or lung.
    """
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = lesions[(lesions["patient_id"].astype(str) == str(patient_id))
                   & (lesions["timepoint"].astype(str) == str(timepoint))]
    if rows.empty:
        raise CTTimeError(f"No lesion of patient {patient_id} at time point {timepoint} in the lesions table.", "input")
    rows = rows.reset_index(drop=True)
    for column in TEXT_COLUMNS:
        rows[column] = rows[column].fillna("").astype(str) if column in rows else ""
    if patients is None or "n_scored" not in patients:  # none given, or written by an older CTTime
        patients = aggregation.summarize(lesions)
    mine = patients[patients["patient_id"].astype(str) == str(patient_id)]
    history = _order_timepoints(mine.reset_index(drop=True))
    current = history[history["timepoint"].astype(str) == str(timepoint)]
    patient = (current.iloc[0] if len(current) else aggregation.summarize(rows).iloc[0]).to_dict()
    patient = {k: "" if k in TEXT_COLUMNS and not isinstance(v, str) else v for k, v in patient.items()}
    warnings = _warnings_of(rows, warnings, patient)
    window_name("", window)  # an unknown window is an error before drawing

    with _style():
        body_top = HEADER_HEIGHT + (BANNER_LINE * len(warnings) + 0.15 if warnings else 0)
        grid_x = MARGIN + SUMMARY_WIDTH + GUTTER
        grid_width = PAGE_WIDTH - grid_x - MARGIN
        columns, n_rows, side = grid_layout(len(rows), grid_width, PAGE_HEIGHT - body_top - FOOTER_HEIGHT)
        panel_width, row_height = grid_width / columns, side + CAPTION_HEIGHT + ROW_GAP
        caption_width, beside = side, len(rows) == 1  # one lesion: a larger image, its caption to the right
        if beside:
            side = min(PAGE_HEIGHT - body_top - FOOTER_HEIGHT - ROW_GAP, grid_width - CAPTION_BESIDE - GUTTER)
            caption_width, panel_width, row_height = grid_width - side - GUTTER, side, side + ROW_GAP
        slices = _lesion_slices(rows, image, masks, image_reason)
        panels = [_lesion_panel(row, caption_width, lesion, reason, patient.get("min_lesion_id", ""), window)
                  for row, (lesion, reason) in zip(rows.to_dict("records"), slices)]
        size = (PAGE_WIDTH, max(PAGE_HEIGHT, body_top + n_rows * row_height + FOOTER_HEIGHT))
        figure = Figure(figsize=size, dpi=DPI, facecolor="white")
        FigureCanvasAgg(figure)
        _draw_header(figure, patient_id, timepoint, warnings, size)
        summary, bottom = _draw_summary(figure, patient, rows, warnings, MARGIN, body_top, SUMMARY_WIDTH, size,
                                        history if len(history) > 1 else None, str(timepoint))
        for number, (panel, (lesion, _)) in enumerate(zip(panels, slices)):
            column, grid_row = number % columns, number // columns
            _draw_lesion(figure, rows.iloc[number].to_dict(), lesion, grid_x + column * panel_width
                         + (panel_width - side) / 2, body_top + grid_row * row_height, side, size, panel,
                         (side + GUTTER, 0.0) if beside else (0.0, side + 0.04))
        if bottom + FOOTER_HEIGHT > size[1]:
            size = _grow(figure, bottom + FOOTER_HEIGHT)
        footer = Block(figure, MARGIN, size[1] - FOOTER_HEIGHT + 0.08, "footer")
        legend = (f"CTTime {__version__} · axial slices through each lesion's largest cross-section (window on each "
                  "image, HU), image left = patient right · colour = CT-TIME score (hatched rim = uninflamed, yellow "
                  "= failed) · grey cross-hatch = beyond the image · not for clinical decisions")
        for number, line in enumerate(_wrap(legend, PAGE_WIDTH - 2 * MARGIN, 7, 2)):
            footer.text(0, number * 0.14, line, fontsize=7, color="#555555")
    return Board(figure, str(patient_id), str(timepoint), panels, summary, warnings,
                 {"columns": columns, "rows": n_rows, "image_side": side, "size": size,
                  "caption": "beside" if beside else "below"})


def _lesion_slices(rows, image, masks, image_reason):
    """(LesionSlice or None, why there is no slice) for every lesion row."""
    import SimpleITK as sitk

    if image is None:
        return [(None, image_reason)] * len(rows)
    image_array, axes = sitk.GetArrayViewFromImage(image), _axial_axes(image)
    found = []
    for row in rows.to_dict("records"):
        mask = (masks or {}).get(row["lesion_id"]) if row["lesion_id"] else None
        if mask is None:
            found.append((None, "no mask for this lesion in the segmentation" if row["lesion_id"] else row["error"]))
            continue
        lesion = lesion_slice(image_array, sitk.GetArrayFromImage(whole_mask(mask, image)), image, axes)
        found.append((lesion, "" if lesion is not None else "the lesion's mask is empty"))
    return found


def _draw_header(figure, patient_id, timepoint, warnings, size):
    """Title, one line on what the score is, and a red banner for every warning (not clinically calibrated...)."""
    width = PAGE_WIDTH - 2 * MARGIN
    header = Block(figure, MARGIN, 0.25, "header")
    header.text(0, 0, _fit(f"CT-TIME tumour board · patient {patient_id} · time point {timepoint}", width, 16,
                           bold=True), fontsize=16, fontweight="bold")
    header.text(0, 0.4, _fit("Score = P(T-cell inflamed tumour microenvironment), > 0.5 inflamed · Bernatowicz et "
                             "al., J Immunother Cancer 2025;13:e009140 · research use only", width, 8.5),
                fontsize=8.5, color="#444444")
    if warnings:
        banner = Block(figure, MARGIN, HEADER_HEIGHT, "warnings")
        banner.rectangle(0, 0, width, BANNER_LINE * len(warnings), facecolor="#c00000", edgecolor="none", zorder=0.5)
        for number, text in enumerate(warnings):  # whole, down to 9 points, before anything is cut
            line, props = _shrunk(f"⚠ {text}", width - 0.24, 12, {"fontweight": "bold", "color": "white"}, smallest=9)
            banner.text(0.12, 0.07 + BANNER_LINE * number, line, **props)


def _grow(figure, height):
    """Make the page taller, keeping every axes where it is relative to the top; returns the new size."""
    width, old = figure.get_size_inches()
    for ax in figure.axes:
        x0, y0, w, h = ax.get_position().bounds
        top = (1 - y0 - h) * old
        ax.set_position([x0, 1 - (top + h * old) / height, w, h * old / height])
    figure.set_size_inches(width, height)
    return (float(width), float(height))


def save(board, path, fmt="png", identity=None):
    """Write the board's figure atomically; no date or tool version that varies in the file's metadata, but the
    run it comes from (``identity``: ``run_folder.identity``): PNG text chunks, the PDF's Subject."""
    identity = identity or {}
    recorded = {run_folder.BOARD_RUN_KEY: identity.get("run_id", ""),
                run_folder.BOARD_LESIONS_KEY: identity.get("lesions_sha256", "")}
    if fmt == "png":
        metadata = dict({"Software": None}, **recorded)
    else:
        metadata = {"Creator": None, "Producer": None, "CreationDate": None,
                    "Subject": "; ".join(f"{key} {value}" for key, value in recorded.items())}
    with _style():
        with atomic_path(path) as temporary:
            board.figure.savefig(temporary, format=fmt, dpi=DPI, metadata=metadata, facecolor="white")
    return Path(path)


def board_identity(path):
    """The run a board PNG records (``save``): {"run_id", "lesions_sha256"}, "" for what it does not record."""
    from PIL import Image

    with Image.open(path) as png:
        text = dict(getattr(png, "text", {}) or {})
    return {"run_id": text.get(run_folder.BOARD_RUN_KEY, ""),
            "lesions_sha256": text.get(run_folder.BOARD_LESIONS_KEY, "")}


def write_board(out_dir, patient_id, timepoint, lesions, patients=None, image=None, masks=None, warnings=(),
                pdf=False, image_reason="no CT image given", window="auto", identity=None):
    """Draw one board and write <patient>_<timepoint>_board.png (and .pdf) to ``out_dir``; returns the paths.
    ``identity``: the run it comes from (default: ``out_dir``'s, ``run_folder.identity``)."""
    identity = identity if identity is not None else run_folder.identity(out_dir)
    board = board_figure(patient_id, timepoint, lesions, patients, image, masks, warnings, image_reason, window)
    paths = [save(board, run_folder.board_path(out_dir, patient_id, timepoint), identity=identity)]
    if pdf:
        paths.append(save(board, run_folder.board_path(out_dir, patient_id, timepoint, ".pdf"), "pdf", identity))
    return paths


def write_run_boards(run_dir, pdf=False, patient=None, window="auto"):
    """Boards of every patient and time point of a run folder (or of one patient), drawn holding the folder's lock
    (``run_folder.claim``); returns the files written."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():  # reading its tables says what is wrong
        read_table(run_dir / run_folder.LESIONS_CSV, "lesions table")
    with run_folder.claim(run_dir):
        return _write_run_boards(run_dir, pdf, patient, window)


def _write_run_boards(run_dir, pdf, patient, window):
    lesions = read_table(run_dir / run_folder.LESIONS_CSV, "lesions table")
    patients = read_table(run_dir / run_folder.PATIENTS_CSV, "patients table")
    warnings = [w for w in run_folder.read_run_record(run_dir).get("warnings", []) if w]
    identity = run_folder.identity(run_dir)
    if patient is not None:
        known = sorted(set(lesions["patient_id"]))
        lesions = lesions[lesions["patient_id"] == str(patient)]
        if lesions.empty:
            raise CTTimeError(f"Patient {patient} is not in {run_dir / run_folder.LESIONS_CSV}; its patients are "
                              f"{', '.join(known)}.", "input")
    if lesions.empty:
        raise CTTimeError(f"{run_dir / run_folder.LESIONS_CSV} has no lesion rows: nothing to draw. Give a folder "
                          "written by `cttime score` or `cttime cohort`.", "input")
    files = []
    for (patient_id, timepoint), rows in lesions.groupby(["patient_id", "timepoint"], sort=False):
        image, masks, reason = load_case(run_dir, rows)
        files += write_board(run_dir, patient_id, timepoint, lesions, patients, image, masks, warnings,
                             pdf, reason, window, identity)
    return files


def stale_boards(run_dir, written=()):
    """Board PNGs of a run folder, other than ``written``, drawn from another lesions.csv than the folder's (it
    changed after they were drawn, or they record none): one line each, naming the board and what to do."""
    run_dir = Path(run_dir)
    current = run_folder.identity(run_dir)
    written = {Path(path).name for path in written}
    lines = []
    for path in sorted(run_dir.glob(f"*{run_folder.BOARD_SUFFIX}.png")):
        if path.name in written:
            continue
        try:
            drawn = board_identity(path)
        except OSError:  # not a PNG that can be read: it cannot say what it was drawn from
            drawn = {"lesions_sha256": ""}
        if drawn["lesions_sha256"] != current["lesions_sha256"]:
            run = f", in run {drawn['run_id']}" if drawn.get("run_id") else ""
            lines.append(f"{path.name} was drawn from another lesions.csv than {run_dir / run_folder.LESIONS_CSV} "
                         f"(it changed after the board was drawn{run}); draw it again: cttime board {run_dir}")
    return lines
