"""Export: the results as the CLI writes them (lesions.csv, patients.csv, coloured .seg.nrrd, DICOM SEG + SR) and
the board, each holding the output folder's lock as a run does (``run_folder.claim``): while a `cttime` run writes
the same folder, an export is refused with a message, and the other way round."""

from CTTimeLib import __version__
from CTTimeLib.run import run_folder

from .images import volume_to_image
from .segments import lesions_from_segmentation, save_segmentation


def export(out_dir, results, studies):
    """lesions.csv, patients.csv and perturbations.csv (as the CLI writes them) and each study's coloured .seg.nrrd;
    the paths written."""
    with run_folder.claim(out_dir) as out_dir:
        files = run_folder.write_results(out_dir, results.lesions, results.patients,
                                         perturbations=results.perturbations)
        for study in studies:
            files.append(save_segmentation(study.segmentation_node,
                                           run_folder.segmentation_path(out_dir, study.patient_id, study.timepoint)))
    return files


def write_board(out_dir, results, study):
    """The tumour-board figure of a study, as `cttime board` draws it; the paths written."""
    from CTTimeLib.figures import tumour_board

    image = volume_to_image(study.volume_node)
    masks = {lesion.lesion_id: lesion.mask
             for lesion in lesions_from_segmentation(study.segmentation_node, study.volume_node, image)}
    with run_folder.claim(out_dir) as out_dir:
        return tumour_board.write_board(out_dir, study.patient_id, study.timepoint, results.lesions,
                                        results.patients, image, masks, results.warnings)


def write_dicom(out_dir, results, study, ct_files):
    """The DICOM SEG and SR of a study, as `cttime dicom-export` writes them; ``ct_files``: the CT's DICOM files
    (from Slicer's DICOM database). CTTimeError says why a study cannot have them."""
    from CTTimeLib.run import dicom_results

    image = volume_to_image(study.volume_node)
    lesions = lesions_from_segmentation(study.segmentation_node, study.volume_node, image)
    frame, patients = results.lesions, results.patients
    rows = frame[(frame["patient_id"] == study.patient_id) & (frame["timepoint"] == study.timepoint)]
    patient = patients[(patients["patient_id"] == study.patient_id) & (patients["timepoint"] == study.timepoint)]
    record = {"tool_version": __version__, "model": results.model_name, "provenance": results.provenance}
    with run_folder.claim(out_dir) as out_dir:
        return dicom_results.write_study(out_dir, ct_files, image, lesions, rows, patient.iloc[0].to_dict(), record)
