"""Text that passes through CTTime's tables: names it refuses, and spreadsheet-formula cells made harmless.

IDs (patients, time points, lesions) and manifest cells are kept byte for byte, except that control characters
(NUL, CR, LF, TAB, ...) and line separators are refused: a CSV reader or a spreadsheet would split or cut them.

A CSV cell starting with ``= + - @``, a TAB or a CR is run as a formula by spreadsheets (OWASP, "CSV injection").
Every CSV CTTime writes prefixes such a text cell, and a text cell starting with a single quote, with one
single quote; CTTime's own reader removes it again, so a round trip gives the same text. Numbers, and text that
is just a number such as ``-5``, are left as they are.
"""

import re
import unicodedata

from .errors import CTTimeError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def control_characters(text):
    """The control characters and line separators in ``text`` (as escapes, e.g. ['\\r', '\\x00']), else []."""
    return sorted({repr(c)[1:-1] for c in str(text) if unicodedata.category(c) in ("Cc", "Zl", "Zp")})


def check_name(text, what):
    """``text`` when it has no control character, else a CTTimeError naming ``what`` (e.g. "Segment name")."""
    found = control_characters(text)
    if found:
        raise CTTimeError(f"{what} {str(text)!r} holds the control character(s) {' '.join(found)}; rename it "
                          "without them (tables and spreadsheets would cut or split it).", "input")
    return text


def csv_cell(value):
    """A value as CTTime writes it into a CSV cell: formula-like text gets a leading single quote; line breaks in
    messages become LF (a CR would split the row for most readers)."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if value.startswith(FORMULA_START + (_QUOTE,)) and not _NUMBER.fullmatch(value):
        return _QUOTE + value
    return value


def csv_value(text):
    """A cell's text as it was before ``csv_cell`` (the single quote CTTime added removed)."""
    if isinstance(text, str) and text.startswith(_QUOTE) and text[1:2] and text[1] in FORMULA_START + (_QUOTE,):
        return text[1:]
    return text
