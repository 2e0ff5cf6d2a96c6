"""Studies: one CT study (a patient at a time point) from its files to raw feature rows, one per lesion.

``process_case`` is the task every runner executes: it answers a case from the result cache when its inputs have
not changed, else extracts it (keeping each finished lesion) and stores it. A lesion that fails keeps its row with
the error and its ``error_kind``; a case that cannot be read gives one row that carries the error.
"""

import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.errors import Cancelled, CTTimeError
from ..core.files import atomic_path
from ..io.images import read_image
from ..io.label_tables import label_table
from ..io.marks import read_marks
from ..io.segmentations import read_lesions
from ..scoring import acquisition, robustness, soft_tissue
from .cache import CaseCache, case_key
from .execution import check_cancelled, prefetch
from .proposals import check_new_marks, delineation_of, propose_lesions
from .run_folder import study_key

_LOCAL = threading.local()  # one extractor per thread, feature set and parameter file


@dataclass
class Case:
    """One CT study to score: a patient at a time point, an image, its segmentation and/or RECIST marks (lesions
    proposed from the lines of a marks file, ``io.marks``; "" when there is none)."""

    patient_id: str
    timepoint: str
    image: str
    segmentation: str
    extras: dict = field(default_factory=dict)  # copied into every lesion row (e.g. batch)
    names: dict = field(default_factory=dict)  # label value -> lesion ID, for labelmaps
    locations: dict = field(default_factory=dict)  # lesion ID -> location
    marks: str = ""  # RECIST lines (.mrk.json, CSV or DICOM SR): a lesion proposed from each
    location: str = ""  # the location of the lesions nothing else places (e.g. lung for a chest CT; core.lesions)

    @property
    def key(self):
        return study_key(self.patient_id, self.timepoint)


@dataclass(frozen=True)
class Settings:
    """What a worker needs besides the case: the parameter file, the feature set ("all": pyradiomics,
    "signature": CTTime's engine; see ``scoring.extraction``), the cache folder (None: no cache) and the run's
    shared cache-key context."""

    parameter_file: str
    cache_dir: object = None
    context: object = None
    max_voxels: object = None  # the largest image or segmentation read (None: io.images.voxel_limit's default)
    perturbations: int = 0  # perturbed delineations per lesion (scoring.robustness)
    signature: tuple = ()  # the features a perturbed delineation needs (the model's)
    features: str = "all"  # "all": pyradiomics, "signature": CTTime's engine (scoring.extraction)


@dataclass
class CaseResult:
    rows: list
    cached: bool
    seconds: float


def extract_lesions(image, lesions, extractor, meta, progress=None, cancelled=None, done=None, on_row=None,
                    perturbations=0, perturbation_extractor=None):
    """Raw feature rows for lesions already on the image grid, with each lesion's soft-tissue share (measured on
    the prepared image and mask, so also for a lesion whose features then fail); a lesion that fails keeps its row
    with the error and its ``error_kind``. ``done`` maps lesion IDs to rows already extracted (resuming);
    ``on_row(row)`` is called with each newly extracted row. The next lesions are prepared (resampled) in two
    background threads while the extractor computes the one before them. With ``perturbations`` > 0, each
    scorable row also holds the features of that many perturbed delineations (``robustness.PERTURBED``, from
    ``perturbation_extractor``; a row from ``done`` keeps those it has and gets the missing ones). A lesion whose
    share is below ``soft_tissue.FAIL_THRESHOLD`` fails (kind "mask") before its features."""
    done = done or {}
    todo = [lesion for lesion in lesions if lesion.lesion_id not in done]
    prepared = prefetch(lambda lesion: extractor.prepare(image, lesion.mask, lesion.lesion_id), todo, threads=2)
    rows = []
    with contextlib.closing(prepared):
        for number, lesion in enumerate(lesions):
            check_cancelled(cancelled)
            if progress:
                progress(number, len(lesions), f"{meta.get('patient_id', '')} {lesion.lesion_id}")
            if lesion.lesion_id in done:
                row = dict(meta, **done[lesion.lesion_id])
                if not _perturb(row, image, lesion, perturbations, perturbation_extractor, cancelled):
                    rows.append(row)
                    continue
            else:
                delineation, warning = delineation_of(lesion)
                row = dict(meta, lesion_id=lesion.lesion_id, location=lesion.location, error="", error_kind="",
                           delineation=delineation, delineation_warning=warning)
                ready = None
                try:
                    ready = next(prepared).result()
                    kept, drawn = soft_tissue.soft_tissue_counts(ready.image, ready.mask, extractor.parameters)
                    row[soft_tissue.COLUMN] = kept / drawn if drawn else float("nan")
                    soft_tissue.check_kept(lesion.lesion_id, kept, drawn, extractor.parameters)
                    row.update(extractor.features(ready))
                except CTTimeError as exc:
                    row.update(error=str(exc), error_kind=exc.kind)
                except Exception as exc:  # never lose the other lesions to one lesion's unexpected failure
                    row.update(error=f"Lesion {lesion.lesion_id}: unexpected {type(exc).__name__}: {exc}",
                               error_kind="unexpected")
                _perturb(row, image, lesion, perturbations, perturbation_extractor, cancelled, ready)
            if on_row:
                on_row(row)
            rows.append(row)
    if progress:
        progress(len(lesions), len(lesions), "done")
    return rows


def _perturb(row, image, lesion, count, extractor, cancelled, prepared=None):
    """Give a scorable row the features of ``count`` perturbed delineations (``prepared``: the lesion as the
    extractor prepared it, whose resampling they share); True when some were computed."""
    if not count or row.get("error") or robustness.usable(row.get(robustness.PERTURBED), count) is not None:
        return False
    try:
        row[robustness.PERTURBED] = robustness.perturbed_features(
            image, lesion.mask, lesion.lesion_id, extractor, count, row.get(robustness.PERTURBED) or (),
            check=lambda: check_cancelled(cancelled), prepared=prepared)
    except Cancelled:
        raise
    except Exception as exc:  # the lesion keeps its score; only its interval is lost (and retried by a rerun)
        row[robustness.PERTURBED] = [{"error": f"Lesion {lesion.lesion_id}: perturbed delineations: unexpected "
                                               f"{type(exc).__name__}: {exc}", "unexpected": True}] * count
    return True


def read_case(case, max_voxels=None):
    """The image and lesions of a case (the last case read is kept, so writing its outputs reads nothing again;
    ``max_voxels``: see ``io.images.voxel_limit``)."""
    table = label_table(case.segmentation) if case.segmentation else None
    stamps = tuple(_stamp(path) for path in (case.image, case.segmentation, table, case.marks) if path)
    return _read_case(case.image, case.segmentation, tuple(case.names.items()), tuple(case.locations.items()), stamps,
                      max_voxels, case.marks, case.location)


def _stamp(path):
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@functools.lru_cache(maxsize=1)
def _read_case(image_path, segmentation_path, names, locations, stamps, max_voxels, marks_path="", location=""):
    image = read_image(image_path, max_voxels)
    locations = dict(locations)
    marks = read_marks(marks_path, image, image_path) if marks_path else []
    proposed = {mark.lesion_id for mark in marks}
    drawn = read_lesions(segmentation_path, image, dict(names), {k: v for k, v in locations.items()
                                                                 if k not in proposed}, max_voxels, location) \
        if segmentation_path else []
    check_new_marks([lesion.lesion_id for lesion in drawn], marks, segmentation_path, marks_path)
    unknown = sorted(set(locations) - proposed) if not segmentation_path else []
    if unknown:
        raise CTTimeError(f"Marks file {marks_path} has no lesion {', '.join(map(repr, unknown))} to give a location "
                          f"(--location, the manifest's locations); its lesions are "
                          f"{', '.join(map(repr, sorted(proposed)))}.", "input")
    return image, drawn + propose_lesions(image, marks, locations, location)


def case_meta(case):
    """The columns every row of a case shares: manifest extras, patient, time point, input paths."""
    return dict(case.extras, patient_id=case.patient_id, timepoint=case.timepoint,
                image=str(Path(case.image).absolute()),
                segmentation=str(Path(case.segmentation).absolute()) if case.segmentation else "",
                marks=str(Path(case.marks).absolute()) if case.marks else "")


def extract_case(case, extractor, progress=None, cancelled=None, done=None, on_row=None, max_voxels=None,
                 **perturbation):
    """Raw feature rows of a case, with its acquisition parameters (``scoring.acquisition``); a case that
    cannot be read gives one row that carries the error. ``done``, ``on_row`` and ``perturbation`` (its
    ``perturbations`` and ``perturbation_extractor``): see ``extract_lesions``."""
    meta = case_meta(case)
    try:
        image, lesions = read_case(case, max_voxels)
    except CTTimeError as exc:
        return [dict(meta, lesion_id="", location="", error=str(exc), error_kind=exc.kind)]
    meta.update(acquisition.describe(case.image, image))
    return extract_lesions(image, lesions, extractor, meta, progress, cancelled, done, on_row, **perturbation)


def use_extractor(extractor):
    """Let tasks run in this thread reuse an extractor already built (the inline, one-worker case)."""
    if not hasattr(_LOCAL, "extractors"):
        _LOCAL.extractors = {}
    _LOCAL.extractors[extractor.feature_set, extractor.parameter_file] = extractor


def _extractor(feature_set, parameter_file, features=None):
    """This thread's extractor of ``feature_set`` ("all": pyradiomics, "signature": CTTime's engine) and
    ``parameter_file``, restricted to ``features`` when given."""
    from ..scoring.extractors import extractor_for

    key = feature_set, parameter_file
    if key not in getattr(_LOCAL, "extractors", {}):
        use_extractor(extractor_for(*key))
    if not features:
        return _LOCAL.extractors[key]
    restricted = key + (tuple(features),)
    if restricted not in _LOCAL.extractors:
        _LOCAL.extractors[restricted] = _LOCAL.extractors[key].restricted(features)
    return _LOCAL.extractors[restricted]


def absolute(case):
    """The case with absolute paths (workers may run in another folder)."""
    return replace(case, image=os.path.abspath(case.image),
                   segmentation=os.path.abspath(case.segmentation) if case.segmentation else "",
                   marks=os.path.abspath(case.marks) if case.marks else "")


def process_case(case, settings, cancelled=None):
    """The raw rows of one case, from the cache when its inputs have not changed (``cancelled``: only when run in
    the calling process). Cached rows without enough perturbed delineations get the missing ones, nothing else
    is extracted again."""
    start = time.perf_counter()
    _fault_hook(case)
    meta = case_meta(case)
    store = None
    if settings.cache_dir:
        try:
            store = CaseCache(settings.cache_dir, case_key(case, settings.context), settings.context,
                              f"{case.patient_id} {case.timepoint}")
        except (OSError, CTTimeError):  # an input is missing or not a file: extract_case reports it
            store = None
    cached = store.rows() if store else None
    if cached is not None and robustness.complete(cached, settings.perturbations):
        rows = [dict(meta, **row) for row in cached]
        return CaseResult(robustness.limited(rows, settings.perturbations), True, time.perf_counter() - start)

    def strip(row):
        return {k: v for k, v in row.items() if k not in meta}

    finished = {row["lesion_id"]: row for row in cached if row.get("lesion_id")} if cached is not None else \
        store.finished_lesions() if store else {}
    perturbation_extractor = _extractor(settings.features, settings.parameter_file, settings.signature) \
        if settings.perturbations else None
    rows = extract_case(case, _extractor(settings.features, settings.parameter_file), cancelled=cancelled,
                        done=finished, on_row=(lambda row: store.add_lesion(strip(row))) if store else None,
                        max_voxels=settings.max_voxels, perturbations=settings.perturbations,
                        perturbation_extractor=perturbation_extractor)
    if store:
        store.store([strip(row) for row in rows])
    return CaseResult(robustness.limited(rows, settings.perturbations), False, time.perf_counter() - start)


FAULT_HOOK = "CTTIME_TEST_KILL_WORKER"


def _fault_hook(case):
    """Fault injection for the tests of dead workers: with ``CTTIME_TEST_KILL_WORKER`` naming a folder that holds
    a file named after the study's key with a number N > 0 in it, a worker process (never the main one) writes
    N - 1 there and kills itself with SIGKILL."""
    folder = os.environ.get(FAULT_HOOK)
    if not folder or multiprocessing.parent_process() is None:
        return
    counter = Path(folder) / case.key
    try:
        remaining = int(counter.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return
    if remaining > 0:
        with atomic_path(counter) as temporary:
            Path(temporary).write_text(str(remaining - 1), encoding="ascii")
        os.kill(os.getpid(), signal.SIGKILL)
