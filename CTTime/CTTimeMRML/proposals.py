"""Proposals: lesions proposed from RECIST lines drawn in Slicer (line markups) or given in a marks file, added to
a study's segmentation as segments tagged as proposed, ready for the Segment Editor and live scores."""

import numpy as np
import SimpleITK as sitk

from CTTimeLib.core.geometry import grid_offset
from CTTimeLib.core.lesions import is_proposed, split_warnings
from CTTimeLib.core.tags import DELINEATION_TAG, DELINEATION_WARNING_TAG, tag_text
from CTTimeLib.io.marks import Line, check_on_image, pair_lines, read_marks
from CTTimeLib.run.proposals import check_new_marks, propose_lesions

from .images import volume_to_image
from .segments import get_tag, segments

LINE_CLASS = "vtkMRMLMarkupsLineNode"


def scene_lines(scene):
    """The scene's line markup nodes, in the scene's order."""
    return [scene.GetNthNodeByClass(n, LINE_CLASS) for n in range(scene.GetNumberOfNodesByClass(LINE_CLASS))]


def marks_of_lines(line_nodes):
    """Marks (LPS mm) of line markup nodes: the node name is the lesion ID, a second line of that name its short
    axis; each line's two end points in world (RAS) coordinates, with any transform applied."""
    from CTTimeLib.core.errors import CTTimeError

    lines = []
    for node in line_nodes:
        where = f"line {node.GetName()!r}"
        if node.GetNumberOfDefinedControlPoints() != 2:
            raise CTTimeError(f"Line markup {node.GetName()!r} has {node.GetNumberOfDefinedControlPoints()} placed "
                              "end point(s); place both ends of the lesion's long axis.", "input")
        ends = []
        for n in range(2):
            ras = [0.0, 0.0, 0.0]
            node.GetNthControlPointPositionWorld(n, ras)
            ends.append((-float(ras[0]), -float(ras[1]), float(ras[2])))  # RAS -> LPS
        lines.append(Line(node.GetName(), ends[0], ends[1], where))
    return pair_lines(lines, "the scene's line markups")


def propose_segments(segmentation_node, volume_node, line_nodes=(), marks_file=None):
    """Propose a lesion from each line (``line_nodes``, or the lines of ``marks_file``: .mrk.json, CSV or an SR
    with SCOORD3D lines) on the study's CT and add it to ``segmentation_node`` as a segment named by its line, with
    the CTTime.* tags of a proposed lesion. A line whose lesion was proposed before (a proposed segment of its name)
    is left as it is, so lines can be drawn and proposed a few at a time (delete the segment to propose it again);
    a line naming a segment drawn by hand is refused before anything is added. Returns the newly proposed Lesions
    (their warnings in their tags)."""
    import slicer

    image = volume_to_image(volume_node)
    source = marks_file or "the scene's line markups"
    marks = read_marks(marks_file, image) if marks_file else marks_of_lines(line_nodes)
    check_on_image(marks, image, source)
    held = {segment.GetName(): get_tag(segment, DELINEATION_TAG) for _, segment in segments(segmentation_node)}
    marks = [mark for mark in marks if not is_proposed(held.get(mark.lesion_id))]
    check_new_marks(held, marks, segmentation_node.GetName(), source)
    lesions = propose_lesions(image, marks)
    for lesion in lesions:
        segment_id = segmentation_node.GetSegmentation().AddEmptySegment("", lesion.lesion_id)
        labelmap = _oriented_labelmap(lesion.mask, image, volume_node)
        slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
            labelmap, segmentation_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE,
            labelmap.GetExtent())
        segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
        for key, value in lesion.tags.items():
            segment.SetTag(key, tag_text(value))
    return lesions


def _oriented_labelmap(mask, image, volume_node):
    """A lesion mask (cropped, on the CT's grid) as Slicer's vtkOrientedImageData on the volume's IJK grid."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    start = grid_offset(mask, image)
    size = mask.GetSize()
    labelmap = slicer.vtkOrientedImageData()
    labelmap.SetExtent(*(v for axis in range(3) for v in (start[axis], start[axis] + size[axis] - 1)))
    voxels = np.ascontiguousarray(sitk.GetArrayViewFromImage(mask), dtype=np.uint8).ravel()  # i fastest, as VTK
    labelmap.GetPointData().SetScalars(numpy_support.numpy_to_vtk(voxels, deep=True,
                                                                  array_type=vtk.VTK_UNSIGNED_CHAR))
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    labelmap.SetImageToWorldMatrix(matrix)
    return labelmap


def proposal_warnings(lesions):
    """The warnings of proposed lesions, each naming its lesion."""
    return [text for lesion in lesions for text in split_warnings(lesion.tags.get(DELINEATION_WARNING_TAG))]
