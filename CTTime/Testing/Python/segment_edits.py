"""Segment edits as Slicer's Segment Editor makes them, for tests on the slicer-core wheels and the Slicer layer."""


def edit_segment(segmentationNode, segmentId, change):
    """Change a segment's voxels the way Segment Editor effects do: its labelmap goes through
    vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment (vtkSegmentationModifier), which raises
    SourceRepresentationModified; never segment.Modified(). ``change(mask)`` gets the segment's voxels (bool, KJI,
    a copy) and returns the new ones."""
    import slicer
    from vtk.util import numpy_support

    labelmap = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentId, labelmap)
    scalars = labelmap.GetPointData().GetScalars()
    mask = numpy_support.vtk_to_numpy(scalars).reshape(labelmap.GetDimensions()[::-1]) > 0
    scalars.DeepCopy(numpy_support.numpy_to_vtk(change(mask.copy()).astype("uint8").ravel()))
    labelmap.Modified()
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.SetBinaryLabelmapToSegment(labelmap, segmentationNode, segmentId, logic.MODE_REPLACE)
