"""Tables: the user's files (CSV tables, JSON models and references) read with clear errors."""

import json

from ..core.errors import CTTimeError
from ..core.files import check_regular
from ..core.imports import Deferred
from ..core.text import csv_value

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

TEXT_KEYS = ("patient_id", "timepoint", "lesion_id")
# What pandas reads as missing by default (its documentation); only columns that are not text are parsed so.
_MISSING = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
            "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def read_json(path, what, kind):
    """A JSON object from a file, or a CTTimeError naming the file (``what``: e.g. "Model file")."""
    check_regular(path, what, kind)
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise CTTimeError(f"{what} not found: {path}.", kind) from None
    except (OSError, ValueError) as exc:
        raise CTTimeError(f"{what} {path} is not valid JSON: {exc}", kind) from None
    except RecursionError:  # Python's parser gives up on nesting a few thousand levels deep
        raise CTTimeError(f"{what} {path} nests its JSON too deeply to be a CTTime file; give the file CTTime "
                          "wrote.", kind) from None
    if not isinstance(payload, dict):
        raise CTTimeError(f"{what} {path} is not a JSON object.", kind)
    return payload


def read_csv(path, what, required=(), text=TEXT_KEYS, hint="", kind="input", strip=True):
    """A CSV with its ``text`` columns kept as text exactly as written ("NA", "None", "007", "1.0" stay what they
    are; an empty cell is ""), the other columns parsed as pandas does; or a CTTimeError naming the file and what
    it lacks (``hint``: what to give instead when the file does not exist). ``text``: column names, a predicate on
    a column name, or None for every column. The single quote CTTime's CSV writer puts before formula-like text
    is removed (``core.text``). ``strip``: remove spaces around text cells (hand-made tables; a table CTTime wrote
    is read with ``strip=False``, so IDs come back byte for byte). Numbers are read back exactly as written
    (pandas' default parser may be 1 ulp off). A NUL byte, which pandas would silently cut a cell at, is refused."""
    check_regular(path, what, kind, hint)
    is_text = (lambda name: True) if text is None else text if callable(text) else (lambda name: name in text)
    try:
        _refuse_nul(path, what, kind)
        columns = list(pd.read_csv(path, nrows=0).columns)
        as_text = [c for c in columns if is_text(_name(c))]
        table = pd.read_csv(path, dtype={c: str for c in as_text}, keep_default_na=False,
                            na_values={c: _MISSING for c in columns if c not in as_text},
                            skipinitialspace=text is None, float_precision="round_trip")
    except FileNotFoundError:
        raise CTTimeError(f"{what} not found: {path}.{' ' + hint if hint else ''}", kind) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CTTimeError(f"Cannot read {what.lower()} {path}: {exc}", kind) from None
    table.columns = [_name(c) for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise CTTimeError(f"{what} {path} lacks the column(s) {', '.join(missing)} (needs {', '.join(required)}).",
                          kind)
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(csv_value)
        if is_text(column):
            table[column] = table[column].fillna("").astype(str)
            if strip:
                table[column] = table[column].str.strip()
    return table


def _refuse_nul(path, what, kind):
    lines = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            if b"\0" in block:
                line = lines + block[:block.index(b"\0")].count(b"\n") + 1
                raise CTTimeError(f"{what} {path} holds a NUL byte (line {line}); save it again as a text CSV.", kind)
            lines += block.count(b"\n")


def _name(column):
    return csv_value(str(column)).strip()
