"""Delineation robustness: how far a lesion's score moves when the lesion is drawn slightly differently.

Each lesion is re-delineated N times on the same CT (volume adaptation and contour randomisation, after Zwanenburg
et al., Sci Rep 2019;9:614; see docs/robustness.md). Perturbation i at level k moves the lesion's surface by

    d(x) = k * clip(SHIFT * tau_i + WIGGLE * g_i(x), -REACH, REACH)   (voxels, outwards)

and a voxel changes sides when the surface passes it: outside voxels with phi(x) < d(x) join the lesion, inside
voxels with phi(x) > d(x) leave it. phi: signed distance (in voxels of each axis) from x to the lesion's surface, which lies half a voxel beyond the
centres of its boundary voxels; tau_i in [-1, 1]: a global grow (+) or shrink (-); g_i: a smooth Gaussian random
field of unit SD and correlation length CORRELATION_MM (random Fourier modes in space). Perturbations come in
antithetic pairs (2j+1 is 2j with tau and g negated). Everything random comes from the lesion's content (mask and
CT voxels under it) and the pair index, so perturbation i is the same on every rerun, whatever N, and the same
at every level (common random numbers): a level only scales the displacement. The interval at level K is taken
over levels 1..K, so a larger magnitude never narrows it; CTTime reports level 1.

Perturbed lesions go through the run's extractor restricted to the signature's features, on their lesion's
resampling grid (:class:`SharedGrid`: the CT is not resampled for each mask), and are z-scored with the
standardisation of their lesion: they never enter cohort statistics.
pandas is imported where it is used: the Slicer module reads this module's constants before pandas is installed.
"""

import hashlib
import itertools
import math

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError
from ..core.geometry import grid_offset, lesion_mask, nonzero_box
from .extraction import Prepared
from .resampling import holds, resample_image, resampling_grid

# Perturbed delineations per lesion unless asked otherwise, by the run's feature extractor: with CTTime's engine
# ("signature") 3 add about 0.9 s CPU to a 10-lesion patient (1.0 s -> 1.9 s end to end on the 512 x 512 x 61 chest
# CT, 2-core machine; docs/robustness.md), with pyradiomics its feature computation per mask would add seconds, so
# there it is off.
DEFAULT_PERTURBATIONS = {"signature": 3, "all": 0}


def default_perturbations(feature_set):
    """How many perturbed delineations a run scores when not asked (``feature_set``: its extractor's)."""
    return DEFAULT_PERTURBATIONS.get(feature_set, 0)
METHOD = "cttime-delineation-1"  # changes whenever the perturbations below change
SHIFT = 0.5  # voxels: a perturbation's global grow/shrink at level 1 lies within +-SHIFT
WIGGLE = 0.5  # voxels: SD of the local displacement at level 1
REACH = 1.5  # voxels: no point of the surface moves further at level 1
CORRELATION_MM = 5.0  # correlation length of the local displacement
MODES = 32  # random Fourier modes of the local displacement field
PERTURBED = "perturbed_features"  # row key / table column: per perturbation, its features or {"error": why}
PERTURBED_SCORES = "perturbed_scores"  # table column: per perturbation, its score (NaN: failed)
COLUMNS = ("ct_time_score_low", "ct_time_score_high", "ct_time_perturbations", "ct_time_status_robust")
KEYS = ["patient_id", "timepoint", "lesion_id"]  # a lesion's row in lesions.csv and perturbations.csv
_GOLDEN = (math.sqrt(5) - 1) / 2


def settings():
    """What run.json records about the perturbations."""
    return {"method": METHOD, "shift_voxels": SHIFT, "wiggle_voxels": WIGGLE, "reach_voxels": REACH,
            "correlation_mm": CORRELATION_MM, "interval": "min..max of the perturbed scores and the lesion's own",
            "reference": "Zwanenburg A, et al. Sci Rep 2019;9:614"}


class Perturbations:
    """The perturbed delineations of one lesion (``mask``: UInt8 0/1 on ``image``'s grid, cropped to the lesion)."""

    def __init__(self, image, mask, max_level=1):
        start = grid_offset(mask, image)
        if start is None:
            raise ValueError("the lesion mask does not lie on the CT's grid")
        self.image = image
        self.seed = _lesion_seed(image, mask, start)
        size = np.array(mask.GetSize())
        pad = int(math.ceil(max_level * REACH)) + 1
        self.low = np.maximum(np.array(start) - pad, 0)
        high = np.minimum(np.array(start) + size + pad, image.GetSize())
        inside = np.zeros(tuple((high - self.low)[::-1]), np.uint8)
        inside[tuple(slice(int(s - low), int(s - low + n)) for s, low, n in
                     zip(start[::-1], self.low[::-1], size[::-1]))] = sitk.GetArrayViewFromImage(mask)
        self.phi = _surface_distance(inside)
        self.inside = inside.astype(bool)
        self.band = np.flatnonzero(np.abs(self.phi) < max_level * REACH)  # the only voxels that can change
        # band positions in mm from the lesion's first voxel: the field does not depend on the crop
        kji = np.stack(np.unravel_index(self.band, inside.shape), axis=1) + (self.low - start)[::-1]
        self.band_mm = (kji * np.array(image.GetSpacing())[::-1]).astype(np.float32)
        self.max_level = max_level

    def displacement(self, index):
        """The surface displacement of perturbation ``index`` at level 1 on the band's voxels (voxels, + out)."""
        pair, odd = divmod(index, 2)
        sign = -1 if odd else 1
        tau = 2 * ((self.seed[0] / 2 ** 32 + pair * _GOLDEN) % 1.0) - 1  # every prefix spread over [-1, 1]
        bits = np.random.PCG64(self.seed + [pair]).random_raw(MODES * 4)  # bit streams are stable across NumPy
        uniform = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
        frequencies = (_normal(uniform[:MODES * 3]).reshape(MODES, 3) / CORRELATION_MM).astype(np.float32)
        phases = (2 * np.pi * uniform[MODES * 3:]).astype(np.float32)
        field = math.sqrt(2 / MODES) * np.cos(self.band_mm @ frequencies.T + phases).sum(axis=1)
        return sign * np.clip(SHIFT * tau + WIGGLE * field, -REACH, REACH)

    def array(self, index, level=1):
        """Perturbation ``index`` at ``level`` as a boolean array over the padded crop (k, j, i)."""
        if not 1 <= level <= self.max_level:
            raise ValueError(f"level {level} outside 1..{self.max_level}")
        phi, displacement = self.phi.flat[self.band], level * self.displacement(index)
        perturbed = self.inside.copy()  # a voxel changes when the surface moves past it: |phi| < |displacement|
        perturbed.flat[self.band] = np.where(self.inside.flat[self.band], phi <= displacement, phi < displacement)
        return perturbed

    def mask(self, index, level=1):
        """Perturbation ``index`` at ``level`` as a lesion mask (UInt8, cropped to its voxels, on the CT's grid)."""
        return lesion_mask(self.array(index, level), self.image, [int(v) for v in self.low])


def _lesion_seed(image, mask, start):
    """Four 32-bit words from the lesion's content: the mask (size, voxels) and the CT values under it (whatever
    the pixel type: the same CT read by Slicer or from a file gives the same perturbations)."""
    crop = sitk.RegionOfInterest(image, mask.GetSize(), list(start))
    digest = hashlib.sha256(METHOD.encode())
    digest.update(np.array(mask.GetSize(), np.int64).tobytes())
    digest.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(mask), np.uint8).tobytes())
    digest.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(crop), np.float64).tobytes())  # any pixel type
    raw = digest.digest()
    return [int.from_bytes(raw[k:k + 4], "little") for k in range(0, 16, 4)]


def _surface_distance(inside):
    """Signed distance in voxels from each voxel centre to the lesion's surface (negative inside)."""
    image = sitk.GetImageFromArray(inside)
    distances = [sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        mask, insideIsPositive=False, squaredDistance=False, useImageSpacing=False)) for mask in (image, 1 - image)]
    to_lesion, to_outside = (np.maximum(d, 0) for d in distances)
    return np.where(inside > 0, 0.5 - to_outside, to_lesion - 0.5)


def _normal(uniform):
    """Standard normal deviates from uniform ones in (0, 1), by Box-Muller on pairs."""
    radius = np.sqrt(-2 * np.log(uniform[0::2]))
    angle = 2 * np.pi * uniform[1::2]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])


class SharedGrid:
    """A lesion's perturbed delineations prepared for an extractor at the cost of at most one more resampling.

    pyradiomics resamples each mask onto a grid of its own, but the grids of one lesion's masks all lie on one
    lattice (a grid's origin is a whole number of output voxels from a point fixed by the CT; see
    ``resampling.resampling_grid``), and a mask's features depend only on the grid's points inside the mask's
    box. So a perturbed mask is resampled by nearest neighbour onto a grid that holds all of its points (up to 32
    masks in one pass, one bit each) and computed with the image already resampled there: the drawn lesion's own
    grid (it reaches padDistance, 5 mm, beyond the lesion, so it holds most perturbations), else once per lesion
    the grid of the box every perturbation lies in. The values are pyradiomics' on the mask's own grid, the same
    points computed from another origin (~1e-12 HU apart). A mask whose own grid has another spacing (one voxel
    thick along an axis, which pyradiomics does not resample) is left to the extractor's own ``prepare``."""

    BITS = 32  # masks resampled in one pass (UInt32)
    WIDE_PAD = 2  # output voxels around the box of every perturbation: enough to hold them (``holds``)

    def __init__(self, image, perturbations, lesion, resampling):
        """``lesion``: the drawn lesion as the extractor prepared it (``Prepared``, resampled onto its grid)."""
        self.image, self.lesion, self.resampling = image, lesion, resampling
        self.box = nonzero_box(perturbations.phi < perturbations.max_level * REACH)  # z, y, x, in the padded crop
        self.low = perturbations.low + [self.box[axis].start for axis in (2, 1, 0)]  # x, y, z on the CT
        self._wide = None

    def prepare(self, arrays, names):
        """Per perturbed array (boolean over the perturbations' padded crop) a ``Prepared`` for the extractor's
        ``features``, or None where the extractor must prepare that mask itself."""
        crops = [array[self.box] for array in arrays]
        grids = [self._grid_for(crop) for crop in crops]
        prepared = [None] * len(crops)
        for grid in {id(grid): grid for grid in grids if grid is not None}.values():
            chosen = [number for number, other in enumerate(grids) if other is grid]
            for first in range(0, len(chosen), self.BITS):
                part = chosen[first:first + self.BITS]
                on_grid = self._nearest([crops[number] for number in part], grid)
                for bit, number in enumerate(part):
                    mask = sitk.GetImageFromArray((on_grid >> np.uint32(bit)) & np.uint32(1))
                    mask.CopyInformation(grid)
                    prepared[number] = Prepared(names[number], int(np.count_nonzero(crops[number])), grid, mask, True)
        return prepared

    def _grid_for(self, crop):
        """The resampled image whose grid holds the points of this perturbed mask, or None."""
        box = nonzero_box(crop)
        if box is None:
            return None
        bounding_box = [int(self.low[axis] + box[2 - axis].start) for axis in range(3)] + [
            box[2 - axis].stop - box[2 - axis].start for axis in range(3)]
        own = resampling_grid(self.image, bounding_box, self.resampling[0], self.resampling[2])
        if own is None:
            return None
        for wide in (False, True):  # the wide grid only when the lesion's does not hold the mask
            grid = self._widest() if wide else self.lesion.image
            if grid is not None and np.array_equal(own[1], grid.GetSpacing()) and holds(grid, self.image,
                                                                                        bounding_box):
                return grid
        return None

    def _widest(self):
        """The image resampled onto the grid of the box every perturbation lies in (once, when first needed)."""
        if self._wide is None:
            spacing, interpolator, _ = self.resampling
            size = [self.box[axis].stop - self.box[axis].start for axis in (2, 1, 0)]
            grid = resampling_grid(self.image, [int(v) for v in self.low] + size, spacing, self.WIDE_PAD)
            self._wide = [resample_image(self.image, grid, interpolator) if grid is not None else None]
        return self._wide[0]

    def _nearest(self, crops, grid):
        """The crops, bit by bit in one UInt32 image, resampled by nearest neighbour onto ``grid``."""
        packed = np.zeros(crops[0].shape, np.uint32)
        for bit, crop in enumerate(crops):
            packed[crop] |= np.uint32(1 << bit)
        source = sitk.GetImageFromArray(packed)
        source.SetSpacing(self.image.GetSpacing())
        source.SetDirection(self.image.GetDirection())
        source.SetOrigin(self.image.TransformIndexToPhysicalPoint([int(v) for v in self.low]))
        return sitk.GetArrayFromImage(sitk.Resample(source, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                                    sitk.sitkUInt32))


def perturbed_features(image, mask, lesion_id, extractor, count, done=(), level=1, check=None, prepared=None):
    """Per perturbation 0..count-1 of a lesion: its features from ``extractor`` (``features`` of what
    :class:`SharedGrid` prepares, or ``prepare``/``features`` where it cannot; the signature's features), or
    {"error": why}. ``done``: the list of a previous run, kept and extended; ``check()`` is called before each
    perturbation (to cancel); ``prepared``: the lesion as ``extractor.prepare`` gave it, if at hand."""
    results = list(itertools.takewhile(lambda item: not item.get("unexpected"), done))[:count]
    if len(results) == count:
        return results
    perturbations = Perturbations(image, mask, level)
    shared = None
    if getattr(extractor, "resampling", None):
        try:
            prepared = prepared or extractor.prepare(image, mask, lesion_id)
        except CTTimeError:  # the lesion itself cannot be prepared: each perturbation is tried on its own
            prepared = None
        if prepared is not None and prepared.resampled:
            shared = SharedGrid(image, perturbations, prepared, extractor.resampling)
    for first in range(len(results), count, SharedGrid.BITS):
        indices = range(first, min(count, first + SharedGrid.BITS))
        arrays = [perturbations.array(index, level) for index in indices]
        names = [f"{lesion_id} (perturbed delineation {index + 1})" for index in indices]
        ready = shared.prepare(arrays, names) if shared else [None] * len(arrays)
        together = {}  # those on a shared grid, computed in one call where the extractor can (features_of)
        if hasattr(extractor, "features_of") and any(lesion is not None for lesion in ready):
            if check is not None:
                check()
            on_grid = [number for number, lesion in enumerate(ready) if lesion is not None]
            together = dict(zip(on_grid, extractor.features_of([ready[number] for number in on_grid])))
        for number, (array, name, lesion) in enumerate(zip(arrays, names, ready)):
            if check is not None:
                check()
            try:
                if number in together:
                    found = together[number]
                    if isinstance(found, CTTimeError):
                        raise found
                    results.append(found)
                    continue
                if lesion is None:
                    lesion = extractor.prepare(image, lesion_mask(array, image, [int(v) for v in perturbations.low]),
                                               name)
                results.append(extractor.features(lesion))
            except CTTimeError as exc:
                results.append({"error": str(exc)})
    return results


def usable(payload, count):
    """The first ``count`` perturbations of a row's payload, or None when it holds fewer (or none) or failed
    unexpectedly (then they are computed again)."""
    if not isinstance(payload, list) or len(payload) < count or any(item.get("unexpected") for item in payload):
        return None
    return payload[:count]


def limited(rows, count):
    """Rows with their perturbations cut to the first ``count`` (none when ``count`` is 0); other keys kept."""
    result = []
    for row in rows:
        payload = row.get(PERTURBED)
        result.append({k: v for k, v in row.items() if k != PERTURBED})
        if count and isinstance(payload, list) and payload:
            result[-1][PERTURBED] = payload[:count]
    return result


def complete(rows, count):
    """True when every scorable row holds at least ``count`` usable perturbations."""
    return not count or all(row.get("error") or usable(row.get(PERTURBED), count) is not None for row in rows)


def perturbed_frame(payload, features):
    """The payload of one lesion as a frame (one row per perturbation; NaN where a perturbation failed)."""
    import pandas as pd

    return pd.DataFrame([{name: item.get(name, np.nan) for name in features} for item in payload],
                        columns=list(features), dtype=float)


def interval(score, perturbed, threshold):
    """(low, high, robust) of a lesion: the range of its perturbed scores widened to hold its own score; robust
    when every perturbation was scored and all lie on the lesion's side of the threshold. NaNs without a score
    or without perturbations."""
    perturbed = np.asarray(perturbed, float)
    if not np.isfinite(score) or perturbed.size == 0:
        return math.nan, math.nan, None
    scored = perturbed[np.isfinite(perturbed)]
    low, high = float(min(score, scored.min(initial=score))), float(max(score, scored.max(initial=score)))
    same_side = low > threshold if score > threshold else high <= threshold
    return low, high, bool(scored.size == perturbed.size and same_side)


def perturbed_scores(payloads, model, reference, correct=None, batches=None):
    """Row index -> the scores of that lesion's perturbed delineations (NaN where one failed), z-scored with
    ``reference`` like the lesion, after ``correct(frame, batch)`` when its features were harmonised."""
    scores = {}
    for index, payload in payloads.items():
        if not isinstance(payload, list) or not payload:
            continue
        frame = perturbed_frame(payload, model.features)
        if correct is not None:
            frame = correct(frame, batches[index])
        scores[index] = model.score(reference.standardize(frame, model.features)).to_numpy(float)
    return scores


def add_intervals(table, perturbed, threshold):
    """The interval columns (``COLUMNS``) of every row, and ``PERTURBED_SCORES`` (per perturbation) for the
    perturbations table; rows without perturbed scores get none."""
    import pandas as pd

    values = [interval(score, perturbed.get(index, ()), threshold)
              for index, score in table["ct_time_score"].astype(float).items()]
    table["ct_time_score_low"] = [low for low, _, _ in values]
    table["ct_time_score_high"] = [high for _, high, _ in values]
    table["ct_time_perturbations"] = [int(np.isfinite(perturbed[index]).sum()) if index in perturbed else 0
                                      for index in table.index]
    table["ct_time_status_robust"] = pd.Series([robust for _, _, robust in values], index=table.index, dtype=object)
    table[PERTURBED_SCORES] = pd.Series([list(perturbed[index]) if index in perturbed else None
                                         for index in table.index], index=table.index, dtype=object)


def perturbations_table(scored, features):
    """One row per perturbed delineation (the run folder's perturbations.csv): the lesion's keys, the
    perturbation's number, its features and score, or why it failed."""
    import pandas as pd

    rows = []
    for _, lesion in scored.iterrows():
        payload = lesion.get(PERTURBED)
        if not isinstance(payload, list):
            continue
        scores = lesion.get(PERTURBED_SCORES)
        scores = scores if isinstance(scores, list) else [math.nan] * len(payload)
        for number, (item, score) in enumerate(zip(payload, scores), start=1):
            rows.append(dict({key: lesion.get(key, "") for key in KEYS}, perturbation=number,
                             **{name: item.get(name, math.nan) for name in features}, ct_time_score=score,
                             error=item.get("error", "")))
    return pd.DataFrame(rows, columns=KEYS + ["perturbation"] + list(features) + ["ct_time_score", "error"])


def attach(table, perturbations, features):
    """``table`` (lesion rows) with each lesion's perturbations from a perturbations table (as written by
    ``perturbations_table``) in the ``PERTURBED`` column; lesions it does not list get none."""
    import pandas as pd

    missing = [c for c in KEYS + ["perturbation"] + list(features) if c not in perturbations]
    if missing:
        raise CTTimeError(f"The perturbations table lacks the column(s) {', '.join(missing)}.", "input")
    payloads = {}
    ordered = perturbations.assign(perturbation=pd.to_numeric(perturbations["perturbation"], errors="coerce"))
    for key, group in ordered.sort_values("perturbation").groupby(KEYS, sort=False):
        errors = group["error"].fillna("").astype(str) if "error" in group else pd.Series("", group.index)
        values = group[list(features)].apply(pd.to_numeric, errors="coerce")
        payloads[tuple(str(k) for k in key)] = [
            {"error": error} if error else {name: float(values.at[index, name]) for name in features}
            for index, error in errors.items()]
    table = table.copy()
    table[PERTURBED] = pd.Series([payloads.get(tuple(str(row[k]) for k in KEYS)) for _, row in table.iterrows()],
                                 index=table.index, dtype=object)
    return table
