"""Export: the results as the CLI writes them (lesions.csv, patients.csv, coloured .seg.nrrd) and the board."""

from CTTimeLib.run import run_folder

from .images import volume_to_image
from .segments import lesions_from_segmentation, save_segmentation


def export(out_dir, results, studies):
    """lesions.csv, patients.csv and perturbations.csv (as the CLI writes them) and each study's coloured .seg.nrrd;
    the paths written."""
    files = run_folder.write_tables(out_dir, results.lesions, results.patients, results.perturbations)
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
    return tumour_board.write_board(out_dir, study.patient_id, study.timepoint, results.lesions, results.patients,
                                    image, masks, results.warnings)
