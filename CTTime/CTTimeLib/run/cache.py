"""Result cache: each case's raw feature rows in ``<out>/cache/<key>.json``, so a rerun skips finished work.

The key is a SHA-256 of everything the rows depend on: the content of the image and the segmentation (files or
DICOM folders) and of a labelmap's colour table, the content of the parameter file and of the model, the case's label names and locations, and
the CTTime and pyradiomics versions. A case still under way keeps its finished lesions one file each in
``<key>.partial/``. Every file is JSON written atomically, so a crash or kill -9 loses at most the lesion being
extracted, and a changed input, parameter file or model simply misses the cache.
"""

import hashlib
import json
import shutil
from pathlib import Path

from .. import __version__
from ..core.files import digest, safe_name, write_text
from ..io.label_tables import label_table

CACHE_FORMAT = 2  # 2: rows carry soft_tissue_share


def run_context(parameter_file, model_file, pyradiomics_version):
    """What every key of a run shares: parameter-file and model content, tool versions."""
    return {"format": CACHE_FORMAT, "cttime": __version__, "pyradiomics": pyradiomics_version,
            "parameters": digest(parameter_file), "model": digest(model_file)}


def case_key(case, context):
    """The cache key of a case (hashes its image and segmentation once)."""
    table = label_table(case.segmentation)
    payload = dict(context, image=digest(case.image), segmentation=digest(case.segmentation),
                   label_table=digest(table) if table else None,
                   names=sorted((str(k), str(v)) for k, v in case.names.items()),
                   locations=sorted((str(k), str(v)) for k, v in case.locations.items()))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cacheable(row):
    """Rows that failed for an unexpected reason (out of memory, a bug) are retried on the next run."""
    return row.get("error_kind") != "unexpected"


class CaseCache:
    """The cached rows of one case (without patient, time point and manifest extras)."""

    def __init__(self, folder, key):
        self.file = Path(folder) / f"{key}.json"
        self.partial = Path(folder) / f"{key}.partial"

    def rows(self):
        """The finished case's rows, or None."""
        return _load(self.file)

    def finished_lesions(self):
        """Lesion ID -> row of the lesions finished by an interrupted run."""
        rows = (_load(file) for file in sorted(self.partial.glob("*.json"))) if self.partial.is_dir() else ()
        return {row["lesion_id"]: row for row in rows if isinstance(row, dict) and "lesion_id" in row}

    def add_lesion(self, row):
        if _cacheable(row):
            name = safe_name(row["lesion_id"], 40) + "-" + hashlib.sha256(
                str(row["lesion_id"]).encode()).hexdigest()[:12]
            write_text(self.partial / f"{name}.json", json.dumps(row))

    def store(self, rows):
        if all(_cacheable(row) for row in rows):
            write_text(self.file, json.dumps(rows))
            shutil.rmtree(self.partial, ignore_errors=True)


def _load(file):
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or damaged by something other than CTTime: extract again
        return None
