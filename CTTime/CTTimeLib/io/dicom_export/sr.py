"""The DICOM SR: a Comprehensive 3D SR holding a TID 1500 Measurement Report.

    Imaging Measurements
      per scored lesion: a volumetric ROI group (TID 1411) - tracking identifier (lesion ID) and UID, the referenced
        SEG segment, finding (neoplasm) and site, time point, algorithm; the CT-TIME score (and its
        delineation-robustness and standardisation intervals), the signature's four raw features, volume and long
        axis; the status, whether it is robust, whether the lesion lies outside the reference
      the patient at this time point: a group (TID 1501) - lesions scored and not, score aggregates (derivation mean,
        median, minimum, maximum, SD) and their standardisation intervals, total volume and surface; the status of
        each aggregate (and whether it holds within the reference's uncertainty), heterogeneity
    Qualitative Evaluations: the standardisation, every warning, each lesion not scored and why, each lesion
      proposed from its RECIST line (by which method), a comment
"""

import highdicom as hd
import pydicom
from pydicom.uid import generate_uid

from . import codes
from .findings import is_finite, name_uid, tracking_uid
from .seg import UTF8

SERIES_NUMBER = 9902
SERIES_DESCRIPTION = "CT-TIME report"


def _measurement(name, value, unit, derivation=None):
    return hd.sr.Measurement(name=name, value=float(value), unit=unit, derivation=derivation)


def _referenced_segment(segmentation, number, sources):
    """The SEG segment and the CT images it was derived from (highdicom's ``from_segmentation`` fails on a SEG
    with one segment, whose segment identification is shared by all frames)."""
    return hd.sr.ReferencedSegment(
        sop_class_uid=segmentation.SOPClassUID, sop_instance_uid=segmentation.SOPInstanceUID, segment_number=number,
        source_images=[hd.sr.SourceImageForSegmentation(h.SOPClassUID, h.SOPInstanceUID) for h in sources])


def _lesion_group(lesion, segmentation, segment, context):
    items = [_measurement(codes.SCORE, lesion.score, codes.NO_UNITS)]
    if lesion.score_interval is not None:
        items += [_measurement(codes.SCORE_LOW, lesion.score_interval[0], codes.NO_UNITS),
                  _measurement(codes.SCORE_HIGH, lesion.score_interval[1], codes.NO_UNITS)]
    if lesion.reference_interval is not None:
        items += [_measurement(codes.SCORE_REF_LOW, lesion.reference_interval[0], codes.NO_UNITS),
                  _measurement(codes.SCORE_REF_HIGH, lesion.reference_interval[1], codes.NO_UNITS)]
    for feature, value in lesion.features.items():
        name, unit = codes.feature_code(feature)
        items.append(_measurement(name, value, unit))
    if is_finite(lesion.volume_mm3):
        items.append(_measurement(codes.VOLUME, lesion.volume_mm3, codes.CUBIC_MILLIMETER))
    if is_finite(lesion.long_axis_mm):
        items.append(_measurement(codes.LONG_AXIS, lesion.long_axis_mm, codes.MILLIMETER))
    evaluations = [hd.sr.QualitativeEvaluation(codes.STATUS, codes.status_code(lesion.inflamed))]
    if lesion.robust is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.STATUS_ROBUST, codes.YES if lesion.robust else codes.NO))
    for concept, flag in ((codes.STATUS_REF_ROBUST, lesion.reference_robust),
                          (codes.OUTSIDE_REFERENCE, lesion.outside_reference)):
        if flag is not None:
            evaluations.append(hd.sr.QualitativeEvaluation(concept, codes.YES if flag else codes.NO))
    evaluations.append(hd.sr.QualitativeEvaluation(codes.DELINEATION, codes.PROPOSED if lesion.algorithm else
                                                   codes.MANUAL))
    location = codes.LOCATIONS.get(lesion.location)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid(context["patient_id"], lesion.lesion_id),
                                                     identifier=lesion.lesion_id),
        referenced_segment=_referenced_segment(segmentation, *segment),
        finding_type=codes.NEOPLASM, finding_sites=[hd.sr.FindingSite(location)] if location is not None else None,
        time_point_context=context["time_point"], algorithm_id=context["algorithm"], measurements=items,
        qualitative_evaluations=evaluations)


def _patient_group(findings, context):
    items = [_measurement(codes.LESIONS_SCORED, findings.n_lesions, codes.NO_UNITS),
             _measurement(codes.LESIONS_FAILED, findings.n_failed, codes.NO_UNITS)]
    for name, value in findings.aggregates.items():
        if is_finite(value):
            items.append(_measurement(codes.SCORE, value, codes.NO_UNITS, codes.AGGREGATES[name]))
    for name, (low, high) in findings.aggregate_reference_intervals.items():
        items += [_measurement(codes.SCORE_REF_LOW, low, codes.NO_UNITS, codes.AGGREGATES[name]),
                  _measurement(codes.SCORE_REF_HIGH, high, codes.NO_UNITS, codes.AGGREGATES[name])]
    if is_finite(findings.total_volume_mm3):
        items.append(_measurement(codes.VOLUME, findings.total_volume_mm3, codes.CUBIC_MILLIMETER, codes.TOTAL))
    if is_finite(findings.total_surface_mm2):
        items.append(_measurement(codes.SURFACE_AREA, findings.total_surface_mm2, codes.SQUARE_MILLIMETER, codes.TOTAL))
    evaluations = [hd.sr.QualitativeEvaluation(codes.aggregate_status_code(name), codes.status_code(inflamed))
                   for name, inflamed in findings.aggregate_inflamed.items()]
    evaluations += [hd.sr.QualitativeEvaluation(codes.aggregate_reference_robust_code(name),
                                                codes.YES if robust else codes.NO)
                    for name, robust in findings.aggregate_reference_robust.items()]
    if findings.heterogeneity in codes.HETEROGENEITY_LEVELS:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.HETEROGENEITY,
                                                       codes.HETEROGENEITY_LEVELS[findings.heterogeneity]))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=name_uid("patient", findings.patient_id, findings.timepoint),
            identifier=f"{findings.patient_id} {findings.timepoint}: all lesions"),
        time_point_context=context["time_point"], algorithm_id=context["algorithm"], measurements=items,
        qualitative_evaluations=evaluations)


def _texts(findings):
    """TID 1500's "Qualitative Evaluations" container with the report's texts."""
    texts = [(codes.STANDARDIZATION, text) for text in findings.standardization]
    texts += [(codes.WARNING, text) for text in findings.warnings]
    texts += [(codes.NOT_SCORED, f"{lesion.lesion_id}: {lesion.error or 'not scored'}")
              for lesion in findings.lesions if not is_finite(lesion.score)]
    texts += [(codes.DELINEATION, f"{lesion.lesion_id}: {lesion.delineation} by {' '.join(lesion.algorithm)}; "
                                  "check the mask (it was not drawn by a reader)")
              for lesion in findings.lesions if lesion.algorithm]
    if findings.comment:
        texts.append((codes.COMMENT, findings.comment))
    container = hd.sr.ContainerContentItem(name=codes.QUALITATIVE_EVALUATIONS,
                                           relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence([
        hd.sr.TextContentItem(name=name, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
        for name, text in texts])
    return container


def build_report(series, segmentation, segments, library, findings, software_version):
    """The Comprehensive 3D SR of a study. ``segments`` maps lesion IDs to their SEG segment number and source CT
    headers; ``library`` holds the headers of the CT slices the segments lie on (the report's image library)."""
    context = {
        "patient_id": findings.patient_id,
        "time_point": hd.sr.TimePointContext(time_point=str(findings.timepoint), time_point_type=codes.timepoint_type(
            findings.timepoint, findings.baseline)),
        "algorithm": hd.sr.AlgorithmIdentification(name=findings.algorithm, version=findings.algorithm_version)}
    groups = [_lesion_group(lesion, segmentation, segments[lesion.lesion_id], context)
              for lesion in findings.lesions if is_finite(lesion.score) and lesion.lesion_id in segments]
    groups.append(_patient_group(findings, context))
    observer = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DEVICE, observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=name_uid("device", "CTTime"), name="CTTime", manufacturer_name="CTTime", model_name="CTTime")))
    library = [_library_entry(header, series) for header in library]
    report = hd.sr.MeasurementReport(observation_context=observer, procedure_reported=codes.COMPUTED_TOMOGRAPHY,
                                     imaging_measurements=groups, referenced_images=library)
    report[0].ContentSequence.append(_texts(findings))
    document = hd.sr.Comprehensive3DSR(
        evidence=list(series.slices.values()) + [segmentation], content=report, series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1, manufacturer="CTTime",
        is_complete=True, is_final=False, is_verified=False)
    document.SeriesDescription = findings.series_description(SERIES_DESCRIPTION)
    document.SoftwareVersions = software_version
    document.SpecificCharacterSet = UTF8
    scheme = pydicom.Dataset()
    scheme.CodingSchemeDesignator = codes.PRIVATE_SCHEME
    scheme.CodingSchemeName = codes.PRIVATE_SCHEME_NAME
    scheme.CodingSchemeResponsibleOrganization = codes.PRIVATE_SCHEME_ORGANIZATION
    document.CodingSchemeIdentificationSequence = [scheme]
    return document


def _library_entry(header, series):
    """A CT header for the image library; highdicom < 0.23 needs Spacing Between Slices, which the series' own
    slice positions give when the header lacks it."""
    if "SpacingBetweenSlices" in header or len(series.slices) < 2:
        return header
    entry = pydicom.Dataset(header)
    ks = sorted(series.slices)
    first, second = (series.slices[k] for k in ks[:2])
    step = sum((float(a) - float(b)) ** 2 for a, b in zip(second.ImagePositionPatient, first.ImagePositionPatient))
    entry.SpacingBetweenSlices = round(step ** 0.5 / (ks[1] - ks[0]), 6)
    return entry
