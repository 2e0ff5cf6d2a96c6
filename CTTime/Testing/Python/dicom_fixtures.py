"""Real DICOM test data made from a real CT: a CT image series (pydicom), a DICOM SEG (highdicom), an RTSTRUCT."""

import numpy as np
import pytest
import SimpleITK as sitk


def _ds(value):
    from pydicom.valuerep import DSfloat

    return DSfloat(float(value), auto_format=True)


def _save(ds, path):
    try:
        ds.save_as(path, enforce_file_format=True)  # pydicom >= 3
    except TypeError:
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)


def write_ct_series(image, folder, kvp=120, kernel="B30f", contrast="Iohexol", study_uid=None):
    """Write a SimpleITK CT volume (axial, identity direction) as a CT image series; the pydicom datasets."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    values = sitk.GetArrayFromImage(image)
    assert np.array_equal(values, np.round(values)), "the test needs a CT in whole HU"
    values = values.astype(np.int16)
    spacing, origin = image.GetSpacing(), np.array(image.GetOrigin())
    axis = np.array(image.GetDirection()).reshape(3, 3)[:, 2]
    study_uid, series_uid, frame_uid = study_uid or generate_uid(), generate_uid(), generate_uid()
    datasets = []
    for k in range(values.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.PatientID, ds.PatientName = "CT", "STS_019", "STS^019"
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = (
            "20250101", "120000", "1", "", "")
        ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = 1, k + 1, "CTTime test"
        ds.KVP, ds.ConvolutionKernel, ds.SliceThickness = kvp, kernel, _ds(spacing[2])
        if contrast is not None:
            ds.ContrastBolusAgent = contrast
        ds.ImagePositionPatient = [_ds(v) for v in origin + k * spacing[2] * axis]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.Rows, ds.Columns = values.shape[1], values.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = values[k].tobytes()
        _save(ds, folder / f"CT{k:04d}.dcm")
        datasets.append(pydicom.dcmread(folder / f"CT{k:04d}.dcm"))
    return datasets


def write_seg(datasets, masks, path):
    """A binary DICOM SEG (highdicom) of ``masks`` (name -> uint8 array, slices x rows x columns) on the series."""
    hd = pytest.importorskip("highdicom")  # its releases for Python 3.9 predate NumPy 2
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    descriptions = [hd.seg.SegmentDescription(
        segment_number=number, segment_label=name,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for number, name in enumerate(masks, start=1)]
    stacked = np.stack([masks[name] for name in masks], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=stacked, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=2,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="CTTime test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    seg.save_as(path)
    return path


def write_rtstruct(datasets, contours, path):
    """An RTSTRUCT with one ROI per name: ``contours`` maps ROI name -> list of (N, 3) LPS point arrays."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = RTStructureSetStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTStructureSetStorage, meta.MediaStorageSOPInstanceUID, "RTSTRUCT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = datasets[0].StudyInstanceUID, generate_uid()
    ds.PatientID, ds.StructureSetLabel = datasets[0].PatientID, "lesions"
    rois, roi_contours = [], []
    for number, (name, polygons) in enumerate(contours.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        roi.ReferencedFrameOfReferenceUID = datasets[0].FrameOfReferenceUID
        rois.append(roi)
        items = []
        for points in polygons:
            contour = Dataset()
            contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
            contour.ContourData = [_ds(v) for v in np.asarray(points, float).ravel()]
            items.append(contour)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber, roi_contour.ContourSequence = number, Sequence(items)
        roi_contours.append(roi_contour)
    ds.StructureSetROISequence, ds.ROIContourSequence = Sequence(rois), Sequence(roi_contours)
    _save(ds, path)
    return path
