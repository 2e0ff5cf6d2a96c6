"""CTTimeWidget on Slicer's own Python code of 5.8.1, 5.10.0 and 5.12.3 (the test layer, slicer_layer/).

Each test runs one ``scenario_*`` below in a fresh process with that version's ``slicer`` (util,
parameterNodeWrapper, packaging, ScriptedLoadableModule) on the slicer-core wheels and PySide6 offscreen. The
scenarios drive the panel as a user and Slicer do: setup, enter, edits in the widgets, exit, enter, module
reload; Compute and Segment Editor edits (through vtkSlicerSegmentationsModuleLogic, i.e. vtkSegmentationModifier,
as the editor's effects change a segment); package installs answered by a stand-in user and pip runner.
"""

import logging
import struct
from pathlib import Path

import pytest

import slicer_layer
from segment_edits import edit_segment

ALL = slicer_layer.VERSIONS
SCREENSHOT = Path(__file__).resolve().parents[3] / "Screenshots" / "CTTime-panel.png"  # EXTENSION_SCREENSHOTURLS


@pytest.mark.parametrize("version", ALL)
def test_re_delineations_keep_their_range(version, tmp_path):
    slicer_layer.run(version, "test_slicer_versions:scenario_spin_box_range", tmp_path)


@pytest.mark.parametrize("version", ALL)
def test_parameter_node_survives_exit_enter_and_reload(version, tmp_path):
    slicer_layer.run(version, "test_slicer_versions:scenario_parameter_node", tmp_path)


def test_typing_a_patient_id_before_a_segmentation_logs_no_error(tmp_path):
    slicer_layer.run("v5.12.3", "test_slicer_versions:scenario_no_source_volume_error", tmp_path)


def test_leaving_and_reloading_stop_the_active_effect(tmp_path):
    slicer_layer.run("v5.12.3", "test_slicer_versions:scenario_active_effect", tmp_path)


@pytest.mark.parametrize("version", ALL)
def test_live_scores_follow_segment_editor_edits(version, tmp_path):
    slicer_layer.run(version, "test_slicer_versions:scenario_live_scores", tmp_path)


def test_compute_installs_through_slicer_packaging_and_a_declined_install_is_explained(tmp_path):
    slicer_layer.run("v5.12.3", "test_slicer_versions:scenario_packaging", tmp_path, hidden=("pandas",))


@pytest.mark.parametrize("version", ["v5.8.1", "v5.10.0"])
def test_installing_highdicom_keeps_slicers_pydicom(version, tmp_path):
    slicer_layer.run(version, "test_slicer_versions:scenario_highdicom", tmp_path, hidden=("highdicom",))


def test_self_test_installs_its_packages_or_skips(tmp_path):
    slicer_layer.run("v5.12.3", "test_slicer_versions:scenario_self_test", tmp_path, hidden=("pandas",))


def test_the_extension_screenshot_is_a_rendering_of_the_panel():
    """The screenshot the .s4ext and CMakeLists.txt point at exists: a PNG of the panel (render_panel_screenshot)."""
    repo = SCREENSHOT.parents[1]
    url_path = "/main/" + SCREENSHOT.relative_to(repo).as_posix()
    assert url_path in (repo / "CMakeLists.txt").read_text(encoding="utf-8")
    assert url_path in (repo / "CTTime.s4ext").read_text(encoding="utf-8")
    header = SCREENSHOT.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    assert 400 <= width <= 1600 and 600 <= height <= 2400, (width, height)
    assert 20_000 < SCREENSHOT.stat().st_size < 2_000_000


# --- scenarios (run inside the layer: ``app`` is slicer_layer.application) ---------------------------------------

class CriticalLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.CRITICAL)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _combo_select(combo, text):
    combo.currentIndex = [combo.itemText(i) for i in range(combo.count)].index(text)


def _entered_panel(app):
    """CTTime.py loaded, its panel set up and entered, with a CT in the scene: (module, panel, widget)."""
    import slicer

    slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    module, panel = app.load_module()
    widget = app.show_module(panel)
    app.enter(panel)
    return module, panel, widget


def scenario_spin_box_range(app):
    module, panel, widget = _entered_panel(app)
    spinBox = widget.ui.perturbationsSpinBox
    assert (spinBox.minimum, spinBox.maximum) == (0, 100), (spinBox.minimum, spinBox.maximum)  # the .ui's range
    assert spinBox.specialValueText == "off" and spinBox.value == widget._parameterNode.perturbations
    spinBox.value = 0
    assert spinBox.text == "off" and widget._parameterNode.perturbations == 0


def scenario_no_source_volume_error(app):
    critical = CriticalLog()
    logging.getLogger().addHandler(critical)
    module, panel, widget = _entered_panel(app)
    widget.ui.patientIdLineEdit.text = "P01"
    node = widget._parameterNode
    assert node.patientId == "P01" and node.ctVolume is not None and node.segmentation is None
    assert critical.messages == []


def scenario_active_effect(app):
    import slicer

    module, panel, widget = _entered_panel(app)
    editor = widget.ui.segmentEditorWidget
    editor.setActiveEffectByName("Threshold")
    app.leave(panel)
    assert editor.activeEffect() is None  # as Slicer's Segment Editor module: no Threshold preview left pulsing
    app.enter(panel)
    editor.setActiveEffectByName("Threshold")
    slicer.util.reloadScriptedModule("CTTime")
    assert editor.activeEffect() is None  # cleanup() stops it too


def scenario_parameter_node(app):
    """User edits survive leaving and entering the module and its reload; the old panel is unbound."""
    import slicer

    module, panel, widget = _entered_panel(app)
    ui, node = widget.ui, widget._parameterNode
    ui.patientIdLineEdit.text = "P01"
    _combo_select(ui.timepointComboBox, "FU")
    _combo_select(ui.standardizationComboBox, module.SCENE_COHORT)
    ui.perturbationsSpinBox.value = 5
    ui.limitWindowCheckBox.checked = False
    edited = {"patientId": "P01", "timepoint": "FU", "standardization": module.SCENE_COHORT, "perturbations": 5,
              "limitToWindow": False}

    def assert_kept(node, ui):
        assert {name: getattr(node, name) for name in edited} == edited
        assert (ui.timepointComboBox.currentText, ui.standardizationComboBox.currentText) == ("FU", module.SCENE_COHORT)
        assert (ui.perturbationsSpinBox.value, ui.limitWindowCheckBox.checked) == (5, False)

    assert_kept(node, ui)
    app.leave(panel)
    app.enter(panel)
    assert_kept(node, ui)  # Slicer 5.8: the connectors of the first visit would write "BS" and "Reference file"

    slicer.util.reloadScriptedModule("CTTime")
    new = slicer.modules.CTTimeWidget
    assert new is not widget and new._parameterNode is not None
    assert_kept(new._parameterNode, new.ui)
    _combo_select(ui.timepointComboBox, "BR")  # the old panel no longer writes into the parameter node
    assert new._parameterNode.timepoint == "FU"
    _combo_select(new.ui.timepointComboBox, "BR")
    assert new._parameterNode.timepoint == "BR"


def _sample_study(slicer):
    """The sample CT STS_019 and its mask as a segmentation, read with Slicer's storage nodes."""
    from CTTimeLib.core.resources import SAMPLE_DATA

    def read(class_name, path):
        node = slicer.mrmlScene.AddNewNodeByClass(class_name)
        storage = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(path))
        assert storage.ReadData(node)
        return node

    volume = read("vtkMRMLScalarVolumeNode", SAMPLE_DATA / "STS_019" / "CT_image.nii.gz")
    labelmap = read("vtkMRMLLabelMapVolumeNode", SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "STS_019 lesions")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    slicer.mrmlScene.RemoveNode(labelmap)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("LU_1")
    return volume, segmentation


def _computed_panel(app):
    """The panel entered, with the sample study selected, its patient ID typed and Compute pressed:
    (panel, widget, segmentation node)."""
    import slicer

    volume, segmentation = _sample_study(slicer)
    module, panel = app.load_module()
    widget = app.show_module(panel)
    app.enter(panel)
    node = widget._parameterNode
    node.ctVolume, node.segmentation = volume, segmentation
    widget.ui.patientIdLineEdit.text = "STS_019"
    widget.onCompute()
    return panel, widget, segmentation


def scenario_live_scores(app):
    import numpy as np
    import slicer

    panel, widget, segmentation = _computed_panel(app)
    assert widget.live is not None, widget.ui.summaryLabel.text
    segmentId = segmentation.GetSegmentation().GetNthSegmentID(0)
    before = widget.ui.lesionTableWidget.item(0, 3).text()
    assert before == f"{widget.live.scores[segmentId].score:.3f}"
    assert not widget.liveTimer.isActive()

    def without_last_slice(mask):
        mask[np.flatnonzero(mask.any(axis=(1, 2)))[-1]] = False
        return mask

    seen = []
    segmentation.GetSegmentation().AddObserver(slicer.vtkSegmentation.SegmentModified, lambda *a: seen.append(1))
    edit_segment(segmentation, segmentId, without_last_slice)
    assert seen == []  # the editor's change of a segment's voxels raises no SegmentModified
    assert widget.liveTimer.isActive()  # the edit started the live-score timer
    widget.liveTimer.stop()
    widget.onLiveTimer()
    after = widget.ui.lesionTableWidget.item(0, 3).text()
    assert after != before and after == f"{widget.live.scores[segmentId].score:.3f}"


def scenario_packaging(app):
    """Slicer 5.12 without pandas: Compute asks through slicer.packaging.pip_ensure (imported by CTTime, as Slicer
    does not import it); the user declines and is told why nothing was scored; then accepts and pip installs."""
    import slicer

    from slicer_layer import pythonqt, sandbox

    module, panel = app.load_module()
    widget = app.show_module(panel)
    app.enter(panel)
    pythonqt.ctkMessageBox.accept = False
    widget.onCompute()
    [question] = pythonqt.ctkMessageBox.shown
    assert "CTTime - Install Python Packages" in question and "pandas" in question  # pip_ensure's dialog
    assert app.PIP_CALLS == [] and "Nothing was installed" in widget.ui.summaryLabel.text
    assert "pandas" in widget.ui.summaryLabel.text

    pythonqt.ctkMessageBox.accept = True
    app.PIP_RESULT[0] = lambda args: sandbox.install_hidden()
    assert widget.ensureDependencies()
    assert [args[:2] for args in app.PIP_CALLS] == [["install", "pandas>=1.3"]]  # one by one, Slicer's own skipped
    assert "pandas" in slicer.packaging.__name__ + str(app.PIP_CALLS)


def scenario_highdicom(app):
    """Slicer 5.8/5.10 without highdicom: the install keeps Slicer's pydicom (pip then picks a highdicom for it)."""
    import importlib.metadata

    from slicer_layer import pythonqt, sandbox

    module, panel = app.load_module()
    widget = app.show_module(panel)
    pythonqt.ctkMessageBox.accept = True
    app.PIP_RESULT[0] = lambda args: sandbox.install_hidden()
    assert widget.ensureOptional(widget.logic.DICOM_PACKAGES, "The DICOM export needs {}. Install it now?")
    assert app.PIP_CALLS == [["install", "highdicom", f"pydicom=={importlib.metadata.version('pydicom')}"]]


def scenario_self_test(app):
    """Under --testing, the self-test's setUp installs scoring's packages, or skips saying which are missing."""
    import unittest

    import slicer

    from slicer_layer import sandbox

    slicer.app.testing = True
    module, panel = app.load_module()
    test = module.CTTimeTest()
    try:
        test.setUp()
    except unittest.SkipTest as skip:
        assert "pandas" in str(skip) and "could not be installed" in str(skip)
    else:
        raise AssertionError("setUp went on without pandas")
    assert app.PIP_CALLS and "pandas>=1.3" in app.PIP_CALLS[0]
    app.PIP_RESULT[0] = lambda args: sandbox.install_hidden()
    test.setUp()
    assert module.CTTimeLogic.missingPackages() == []


def render_panel_screenshot(app):
    """Screenshots/CTTime-panel.png: the panel after a Compute of the sample CT STS_019, rendered offscreen. Run:
    HOME=/home/radiologist python -m slicer_layer ../shared/reference/slicer-python/v5.12.3 \\
        test_slicer_versions:render_panel_screenshot DIR
    (from CTTime/Testing/Python, with CTTime/ and that folder on PYTHONPATH, QT_QPA_PLATFORM=offscreen)."""
    import slicer

    panel, widget, segmentation = _computed_panel(app)
    panel.resize(560, panel.sizeHint.height())
    panel.show()
    slicer.app.processEvents()
    assert panel.grab().save(str(SCREENSHOT), "PNG")
