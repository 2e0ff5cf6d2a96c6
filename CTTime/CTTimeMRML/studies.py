"""Studies in the scene: a segmentation node with its CT, patient and time point, remembered on the node."""

from dataclasses import dataclass

from CTTimeLib.core.timepoints import TIMEPOINTS
from CTTimeLib.run.run_folder import study_key

PATIENT_ATTRIBUTE, TIMEPOINT_ATTRIBUTE = "CTTime.PatientID", "CTTime.Timepoint"
TIMEPOINT_CHOICES = (*TIMEPOINTS, "other")  # what the panel offers


@dataclass
class Study:
    """A segmentation node to score, its CT volume node, patient and time point."""

    segmentation_node: object
    volume_node: object
    patient_id: str
    timepoint: str

    @property
    def key(self):
        return study_key(self.patient_id, self.timepoint)


def node_source(node):
    """Where a node's data came from (its file, as the CLI's image/segmentation columns), else its name."""
    storage = node.GetStorageNode()
    return storage.GetFileName() if storage is not None and storage.GetFileName() else node.GetName()


def reference_volume(segmentation_node):
    import slicer

    role = slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()
    return segmentation_node.GetNodeReference(role)


def remember_study(study):
    """Store patient, time point and CT on the segmentation node so cohort mode can find the study again."""
    node = study.segmentation_node
    node.SetAttribute(PATIENT_ATTRIBUTE, study.patient_id)
    node.SetAttribute(TIMEPOINT_ATTRIBUTE, study.timepoint)
    node.SetReferenceImageGeometryParameterFromVolumeNode(study.volume_node)


def scene_studies(scene, current=None):
    """Every segmentation in the scene remembered as a CTTime study (``current`` first), for cohort mode.

    One study per patient and time point: a second segmentation of the same study (e.g. a copy) is left out.
    """
    studies = [current] if current else []
    for node in scene.GetNodesByClass("vtkMRMLSegmentationNode"):
        patient_id, volume = node.GetAttribute(PATIENT_ATTRIBUTE), reference_volume(node)
        timepoint = node.GetAttribute(TIMEPOINT_ATTRIBUTE) or TIMEPOINTS[0]
        if patient_id and volume is not None and (patient_id, timepoint) not in {
                (s.patient_id, s.timepoint) for s in studies}:
            studies.append(Study(node, volume, patient_id, timepoint))
    return studies
