"""Files in and out: CT images, segmentations, DICOM, the user's tables, the coloured segmentation writer."""
