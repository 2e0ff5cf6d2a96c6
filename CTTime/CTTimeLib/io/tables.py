"""Tables: the user's files (CSV tables, JSON models and references) read with clear errors."""

import json

import pandas as pd

from ..core.errors import CTTimeError

TEXT_KEYS = ("patient_id", "timepoint", "lesion_id")


def read_json(path, what, kind):
    """A JSON object from a file, or a CTTimeError naming the file (``what``: e.g. "Model file")."""
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise CTTimeError(f"{what} not found: {path}.", kind) from None
    except (OSError, ValueError) as exc:
        raise CTTimeError(f"{what} {path} is not valid JSON: {exc}", kind) from None
    if not isinstance(payload, dict):
        raise CTTimeError(f"{what} {path} is not a JSON object.", kind)
    return payload


def read_csv(path, what, required=(), text=TEXT_KEYS, hint="", kind="input"):
    """A CSV with its ``text`` columns (None: every column) kept as text (missing -> "") and its numbers read back
    exactly as written (pandas' default parser may be 1 ulp off), or a CTTimeError naming the file and what it lacks (``hint``: what to give instead when the file does not exist)."""
    try:
        if text is None:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:
            table = pd.read_csv(path, dtype={column: str for column in text}, float_precision="round_trip")
    except FileNotFoundError:
        raise CTTimeError(f"{what} not found: {path}.{' ' + hint if hint else ''}", kind) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CTTimeError(f"Cannot read {what.lower()} {path}: {exc}", kind) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise CTTimeError(f"{what} {path} lacks the column(s) {', '.join(missing)} (needs {', '.join(required)}).",
                          kind)
    for column in table.columns if text is None else text:
        if column in table:
            table[column] = table[column].fillna("").astype(str).str.strip()
    return table
