"""The lesion vocabulary: a lesion (ID, mask, location, tags) and the location classes."""

import re
from dataclasses import dataclass, field

import SimpleITK as sitk

from .errors import CTTimeError

LOCATIONS = ("lung", "liver", "lymph node", "bone", "other")
WARNING_SEPARATOR = " | "  # between the warnings of one lesions.csv or patients.csv cell (a warning may hold ";")
MANUAL = "manual"  # the delineation of a lesion drawn by hand (a proposed one's starts with "proposed")


# First word of a lesion name -> location. The paper took "liver_*" as liver, "LU_*" / "lung_*" as lung and
# everything else as other; lymph nodes and bone are added the same way.
_LOCATION_WORDS = {
    "liver": "liver", "hep": "liver", "hepatic": "liver",
    "lu": "lung", "lung": "lung", "pulm": "lung", "pulmonary": "lung",
    "ln": "lymph node", "lymph": "lymph node", "node": "lymph node", "lymphnode": "lymph node", "nodal": "lymph node",
    "bone": "bone", "bo": "bone", "osseous": "bone", "oss": "bone",
}


@dataclass
class Lesion:
    """One lesion: its ID, binary mask (UInt8 0/1 on the CT's grid, cropped to the lesion), location and tags."""

    lesion_id: str
    mask: sitk.Image
    location: str = "other"
    tags: dict = field(default_factory=dict)


def is_proposed(delineation):
    """Whether a ``delineation`` value (lesions.csv column, CTTime.Delineation tag) says the mask was proposed."""
    return isinstance(delineation, str) and delineation.startswith("proposed")


def join_warnings(parts):
    """One ``warning`` cell from warning texts: each once, in order, empty ones dropped."""
    return WARNING_SEPARATOR.join(dict.fromkeys(str(part).strip() for part in parts if part and str(part).strip()))


def split_warnings(text):
    """The warning texts of a ``warning`` cell (missing or NaN: none)."""
    if not isinstance(text, str):
        return []
    return [part.strip() for part in text.split(WARNING_SEPARATOR) if part.strip()]


def default_label_name(label):
    """The lesion ID of a labelmap label nothing names."""
    return f"lesion_{int(label)}"


def is_default_label_name(lesion_id):
    return re.fullmatch(r"lesion_\d+", str(lesion_id)) is not None


def infer_location(name, default="other"):
    """Location from the lesion name's first word, e.g. "LU_1" -> lung, "liver_2" -> liver, else ``default`` (a
    study's own location, e.g. every lesion of a chest CT is lung; "other" when the study has none)."""
    first = re.split(r"[\s_\-.]+", str(name).strip().lower(), maxsplit=1)[0]
    return _LOCATION_WORDS.get(first, default or "other")


def study_location(value, option="--location"):
    """A study's location (the lesions nothing else places) checked, "" for none."""
    if not str(value).strip():
        return ""
    try:
        return normalize_location(value, "")
    except CTTimeError:
        raise CTTimeError(f"{option} {value}: unknown location; use one of {', '.join(LOCATIONS)}.", "input") from None


def normalize_location(value, lesion_id):
    """A given location checked against the known classes ("LN" and "lymph_node" are accepted too)."""
    text = str(value).strip().lower().replace("_", " ")
    if text in LOCATIONS:
        return text
    mapped = _LOCATION_WORDS.get(text.replace(" ", ""))
    if mapped:
        return mapped
    raise CTTimeError(f"Lesion {lesion_id}: unknown location {value!r}; use one of {', '.join(LOCATIONS)}.", "input")
