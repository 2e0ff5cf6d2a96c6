"""Every code the DICOM SEG and SR use: standard ones (SCT, DCM, UMLS, UCUM, IBSI) where they exist, and the private
coding scheme ``99CTTIME`` for the CT-TIME concepts (docs/dicom.md lists them all).

Codes are spelled out here rather than looked up in pydicom's code dictionary, whose names differ between pydicom
versions (pydicom 2.4 cannot resolve ``codes.SCT.Median``, for one).
"""

from highdicom.sr import CodedConcept

PRIVATE_SCHEME = "99CTTIME"
PRIVATE_SCHEME_NAME = "CTTime: CT-TIME signature concepts"
PRIVATE_SCHEME_ORGANIZATION = "CTTime project"


def _code(scheme, value, meaning):
    return CodedConcept(value, scheme, meaning)


def private(value, meaning):
    return _code(PRIVATE_SCHEME, value, meaning)


def _sct(value, meaning):
    return _code("SCT", value, meaning)


def _ucum(value, meaning):
    return _code("UCUM", value, meaning)


# Segments: what each one is and where it lies
MORPHOLOGICALLY_ABNORMAL = _sct("49755003", "Morphologically abnormal structure")
NEOPLASM = _sct("108369006", "Neoplasm")
LOCATIONS = {"lung": _sct("39607008", "Lung"), "liver": _sct("10200004", "Liver"),
             "lymph node": _sct("59441001", "Lymph node"), "bone": _sct("272673000", "Bone")}  # "other": none

# Units
NO_UNITS = _ucum("1", "no units")
HOUNSFIELD_UNIT = _ucum("[hnsf'U]", "Hounsfield unit")
MILLIMETER = _ucum("mm", "millimeter")
SQUARE_MILLIMETER = _ucum("mm2", "square millimeter")
CUBIC_MILLIMETER = _ucum("mm3", "cubic millimeter")

# Measurements. The signature's features by pyradiomics name: (IBSI code, unit); pyradiomics' definitions of these
# four are IBSI's (Elongation Q3CK, 90th percentile 8DWT, GLCM joint maximum GYBY, GLSZM zone size non-uniformity
# 4JP3). A feature of another model without an entry here gets a private code named after it (``feature_code``).
FEATURES = {
    "original_shape_Elongation": (_code("IBSI", "Q3CK", "Elongation"), NO_UNITS),
    "original_firstorder_90Percentile": (_code("IBSI", "8DWT", "90th percentile"), HOUNSFIELD_UNIT),
    "original_glcm_MaximumProbability": (_code("IBSI", "GYBY", "Joint maximum"), NO_UNITS),
    "original_glszm_SizeZoneNonUniformity": (_code("IBSI", "4JP3", "Zone size non-uniformity"), NO_UNITS),
}
VOLUME = _sct("118565006", "Volume")  # pyradiomics' MeshVolume, as patients.csv sums it
LONG_AXIS = _sct("103339001", "Long axis")  # longest axial diameter (pyradiomics' Maximum2DDiameterSlice)
SURFACE_AREA = _code("IBSI", "C0JK", "Surface area")
SCORE = private("SCORE", "CT-TIME score")
SCORE_LOW = private("SCORE-LOW", "CT-TIME score, delineation-robustness interval lower bound")
SCORE_HIGH = private("SCORE-HIGH", "CT-TIME score, delineation-robustness interval upper bound")
SCORE_REF_LOW = private("SCORE-REF-LOW", "CT-TIME score, standardisation interval lower bound")
SCORE_REF_HIGH = private("SCORE-REF-HIGH", "CT-TIME score, standardisation interval upper bound")
LESIONS_SCORED = private("LESIONS", "Number of lesions scored")
LESIONS_FAILED = private("LESIONS-FAILED", "Number of lesions not scored")

# Derivations of the patient aggregates (DICOM CID 7464), by the aggregate's name in patients.csv
AGGREGATES = {"mean": _sct("373098007", "Mean"), "median": _sct("373099004", "Median"),
              "min": _sct("255605001", "Minimum"), "max": _sct("56851009", "Maximum"),
              "sd": _sct("386136009", "Standard deviation")}
TOTAL = _sct("255619001", "Total")

# Qualitative evaluations
STATUS = private("STATUS", "CT-TIME status")
INFLAMED, UNINFLAMED = private("INFLAMED", "Inflamed"), private("UNINFLAMED", "Uninflamed")
STATUS_ROBUST = private("STATUS-ROBUST", "CT-TIME status robust to delineation")
STATUS_REF_ROBUST = private("REF-ROBUST", "CT-TIME status robust to the reference's uncertainty")  # 64 chars max
OUTSIDE_REFERENCE = private("OUTSIDE-REF", "Lesion outside the standardisation reference")
YES, NO = _sct("373066001", "Yes"), _sct("373067005", "No")
HETEROGENEITY = private("HETEROGENEITY", "CT-TIME heterogeneity")
HETEROGENEITY_LEVELS = {"low": _sct("62482003", "Low"), "moderate": _sct("6736007", "Moderate"),
                        "high": _sct("75540009", "High")}

# Texts of the report (TID 1500 "Qualitative Evaluations")
QUALITATIVE_EVALUATIONS = _code("UMLS", "C0034375", "Qualitative Evaluations")
STANDARDIZATION = private("STANDARDIZATION", "CT-TIME standardisation")
WARNING = private("WARNING", "CT-TIME warning")
NOT_SCORED = private("NOT-SCORED", "Lesion not scored")
COMMENT = _code("DCM", "121106", "Comment")
DELINEATION = private("DELINEATION", "Lesion delineation")
PROPOSED, MANUAL = private("PROPOSED", "Proposed from RECIST line"), private("MANUAL", "Manual delineation")
PROPOSAL_FAMILY = _code("DCM", "123109", "Histogram Analysis")  # CID 7162 Algorithm Family of a proposed mask

# Report context
COMPUTED_TOMOGRAPHY = _sct("77477000", "Computed tomography")
DEVICE = _code("DCM", "121007", "Device")
BASELINE = _code("UMLS", "C1442488", "Baseline")
POSTTREATMENT = _code("DCM", "126074", "Posttreatment")


def feature_code(name):
    """(code, unit) of a signature feature: its IBSI code, else a private code named after the feature."""
    if name in FEATURES:
        return FEATURES[name]
    return private(name[-16:], name), NO_UNITS


def status_code(inflamed):
    return INFLAMED if inflamed else UNINFLAMED


def aggregate_status_code(name):
    """The qualitative evaluation "CT-TIME status of the <aggregate>"."""
    meaning = {"min": "minimum", "max": "maximum"}.get(name, name)
    return private(f"STATUS-{name.upper()}"[:16], f"CT-TIME status of the {meaning}")


def aggregate_reference_robust_code(name):
    """The qualitative evaluation "CT-TIME <aggregate> status robust to the reference"."""
    meaning = {"min": "minimum", "max": "maximum"}.get(name, name)
    return private(f"REFROBUST-{name.upper()}", f"CT-TIME {meaning} status robust to the reference")


def timepoint_type(timepoint, baseline):
    """Time point type (DICOM CID 6146): baseline, else post-treatment for the paper's FU and BR; None otherwise."""
    if baseline:
        return BASELINE
    return POSTTREATMENT if str(timepoint).upper() in ("FU", "BR") else None
