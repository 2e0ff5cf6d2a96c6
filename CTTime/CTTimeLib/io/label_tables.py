"""Label tables: names of a labelmap's labels, from a colour table file saved beside the labelmap.

3D Slicer saves a labelmap's colour table beside it as ``<name>_ColorTable.ctbl`` (older versions ``.txt``, newer
ones ``.csv``); a hand-made table may also be called ``<name>.ctbl``. Three formats are read:

    Slicer text (.ctbl, .txt)   "# Color table file ..." comments, then lines "LABEL NAME R G B A"
                                (spaces in names saved as underscores)
    Slicer CSV (.csv)           a header with LabelValue and Name columns
    ITK-SNAP label descriptions lines "LABEL R G B A VIS MSH "NAME"" (as ITK-SNAP exports them)

``<name>`` is the labelmap's file name without its extension (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd).
Label 0 (background) is ignored.
"""

import csv
import re
import shlex
from pathlib import Path

from ..core.errors import CTTimeError

_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_CANDIDATES = ("{}_ColorTable.ctbl", "{}_ColorTable.txt", "{}_ColorTable.csv", "{}.ctbl")


def label_table(labelmap):
    """The colour table file beside a labelmap, or None."""
    labelmap = Path(labelmap)
    name = labelmap.name
    stem = next((name[:-len(ext)] for ext in _EXTENSIONS if name.lower().endswith(ext)), labelmap.stem)
    for pattern in _CANDIDATES:
        candidate = labelmap.with_name(pattern.format(stem))
        if candidate.is_file():
            return candidate
    return None


def read_label_table(path):
    """Label value -> name of a colour table file (see the module docstring), or a CTTimeError naming the line."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CTTimeError(f"Cannot read the colour table {path} beside the labelmap: {exc}", "input") from None
    if Path(path).suffix.lower() == ".csv":
        return _read_csv(path, text)
    names = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            fields = shlex.split(line) if '"' in line else line.split()
            label = int(fields[0])
            # ITK-SNAP: LABEL R G B A VIS MSH "NAME"; Slicer: LABEL NAME R G B A
            itk_snap = len(fields) >= 8 and all(re.fullmatch(r"[-+.\deE]+", v) for v in fields[1:7])
            name = fields[7] if itk_snap else fields[1]
        except (ValueError, IndexError):
            raise CTTimeError(f"Colour table {path}, line {number}: expected \"LABEL NAME R G B A\" (Slicer) or "
                              f"\"LABEL R G B A VIS MSH \\\"NAME\\\"\" (ITK-SNAP), got {line!r}; correct or remove the file.",
                              "input") from None
        if label > 0 and name:
            names[label] = name
    return names


def _read_csv(path, text):
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"LabelValue", "Name"} <= set(rows[0]):
        raise CTTimeError(f"Colour table {path} lacks the LabelValue and Name columns of Slicer's colour CSV.", "input")
    names = {}
    for row in rows:
        if re.fullmatch(r"\s*\d+\s*", row["LabelValue"] or "") and int(row["LabelValue"]) > 0 and row["Name"]:
            names[int(row["LabelValue"])] = row["Name"].strip()
    return names
