"""Result cache: each case's raw feature rows in ``<out>/cache/<key>.json``, so a rerun skips finished work.

The key is a SHA-256 of everything the rows depend on: the content of the image, the segmentation (files or
DICOM folders), a labelmap's colour table and the marks file (with the delineation method's version), the content
of the parameter file and of the model, the case's label names and locations, the CTTime version, the extractor that computed the rows (pyradiomics and its version,
or CTTime's engine) and the perturbation method (rows keep the features of their lesion's perturbed delineations,
as many as a run asked for; a later run asking for more adds only the missing ones). A case still under way keeps
its finished lesions one file each in ``<key>.partial/``. Every file is JSON written atomically, so a crash or
kill -9 loses at most the lesion being extracted, and a changed input, parameter file, model or extractor simply
misses the cache.

Every entry names its key and the run context (versions, parameter and model digests) and carries a SHA-256 of
its rows. An entry that does not match (another study's file, an edited value, a damaged or foreign file) is
ignored and the study extracted again: the cache can make a run faster, never different.
"""

import hashlib
import json
import shutil
from pathlib import Path

from .. import __version__
from ..core.files import digest, safe_name, write_text
from ..io.label_tables import label_table
from ..scoring.robustness import METHOD as PERTURBATION_METHOD

CACHE_FORMAT = 5  # 2: rows carry perturbed delineations; 3: and soft_tissue_share; 4: a share below 0.1 fails;
#                   5: and the delineation
_SCALARS = (str, int, float, bool, type(None))


def run_context(parameter_file, model_file, extractor_identity):
    """What every key of a run shares: parameter-file and model content, CTTime version, the extractor, the
    perturbation method (the perturbations a row holds are valid for it; how many does not matter, see
    ``study.process_case``)."""
    return {"format": CACHE_FORMAT, "cttime": __version__, "extractor": extractor_identity,
            "parameters": digest(parameter_file), "model": digest(model_file), "perturbation": PERTURBATION_METHOD}


def case_key(case, context):
    """The cache key of a case (hashes its image, segmentation and marks once)."""
    table = label_table(case.segmentation) if case.segmentation else None
    payload = dict(context, image=digest(case.image),
                   segmentation=digest(case.segmentation) if case.segmentation else None,
                   marks=[digest(case.marks), _delineation_method()] if case.marks else None,
                   label_table=digest(table) if table else None,
                   names=sorted((str(k), str(v)) for k, v in case.names.items()),
                   locations=sorted((str(k), str(v)) for k, v in case.locations.items()), location=case.location)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _delineation_method():
    """The method that proposes masks from marks (a new version proposes them again)."""
    from ..delineation import ALGORITHM_NAME, ALGORITHM_VERSION

    return f"{ALGORITHM_NAME} {ALGORITHM_VERSION}"


def _cacheable(row):
    """Rows that failed for an unexpected reason (out of memory, a bug) or for the run's size limit are tried again
    on the next run."""
    return row.get("error_kind") not in ("unexpected", "size")


def _checksum(rows):
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _is_row(row):
    return (isinstance(row, dict) and isinstance(row.get("lesion_id"), str) and isinstance(row.get("error", ""), str)
            and all(isinstance(k, str) and isinstance(v, _SCALARS) for k, v in row.items()))


class CaseCache:
    """The cached rows of one case (without patient, time point and manifest extras)."""

    def __init__(self, folder, key, context=None, study=""):
        self.file = Path(folder) / f"{key}.json"
        self.partial = Path(folder) / f"{key}.partial"
        self.key, self.context, self.study = key, context or {}, study

    def rows(self):
        """The finished case's rows, or None (absent, or an entry that does not match: see the module)."""
        rows = self._load(self.file)
        return rows if rows else None

    def finished_lesions(self):
        """Lesion ID -> row of the lesions finished by an interrupted run."""
        found = {}
        for file in sorted(self.partial.glob("*.json")) if self.partial.is_dir() else ():
            rows = self._load(file)
            if rows and len(rows) == 1 and file.name == self._lesion_file(rows[0]["lesion_id"]):
                found[rows[0]["lesion_id"]] = rows[0]
        return found

    def add_lesion(self, row):
        if _cacheable(row):
            self._write(self.partial / self._lesion_file(row["lesion_id"]), [row])

    def store(self, rows):
        if all(_cacheable(row) for row in rows):
            self._write(self.file, rows)
            shutil.rmtree(self.partial, ignore_errors=True)

    @staticmethod
    def _lesion_file(lesion_id):
        return f"{safe_name(lesion_id, 40)}-{hashlib.sha256(str(lesion_id).encode()).hexdigest()[:12]}.json"

    def _write(self, file, rows):
        entry = {"format": CACHE_FORMAT, "key": self.key, "study": self.study, "context": self.context,
                 "sha256": _checksum(rows), "rows": rows}
        write_text(file, json.dumps(entry))

    def _load(self, file):
        """The rows of an entry that belongs to this key and whose checksum matches, else None."""
        try:
            entry = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # absent, or damaged by something else: extract again
            return None
        if not (isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT and entry.get("key") == self.key
                and entry.get("context") == self.context and isinstance(entry.get("rows"), list)):
            return None
        rows = entry["rows"]
        if not all(_is_row(row) for row in rows) or entry.get("sha256") != _checksum(rows):
            return None
        return rows
