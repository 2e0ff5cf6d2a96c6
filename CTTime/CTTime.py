"""CTTime: the CT-TIME radiomics signature in 3D Slicer.

Delineate lesions semi-automatically with the Segment Editor, score them with CTTimeLib (the code the ``cttime``
command runs, with CTTime's compiled-code-free engine), colour the segments by score and keep each lesion's score
current while its segment is edited, export the CLI's tables and take a tumour-board screenshot.
The widget talks to CTTimeLogic only; the MRML <-> CTTimeLib work is CTTimeMRML's (no Qt).
"""

import importlib
import importlib.util
import logging
import os
import pathlib
from typing import Annotated

import ctk
import qt
import slicer
import vtk
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

import CTTimeMRML
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.files import atomic_path
from CTTimeLib.core.lesions import LOCATIONS
from CTTimeLib.core.resources import DEMO_REFERENCE, SAMPLE_DATA
from CTTimeLib.run import run_folder
from CTTimeLib.scoring.robustness import default_perturbations

REFERENCE_FILE, SCENE_COHORT = "Reference file", "Cohort: all lesions in the scene"
# Semi-automatic tools first, as the paper's radiologist worked; "Local Threshold" needs SegmentEditorExtraEffects.
EFFECT_ORDER = ("Threshold", "Grow from seeds", "Local Threshold", "Islands", "Fill between slices", "Smoothing",
                "Paint", "Erase", "Scissors")
MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
LEGEND_IMAGE = os.path.join(MODULE_DIR, "Resources", "Icons", "CTTimeLegend.png")
SLICER_PACKAGES = ["SimpleITK", "numpy", "scipy", "vtk", "pydicom"]  # Slicer's own; pip must never replace them
LIVE_DELAY_MS = 800  # a lesion is scored again this long after its segment last changed
LESION_COLUMNS = ["Lesion", "Location", "Target", "Score", "Status"]


class CTTime(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CTTime"
        self.parent.categories = ["Quantification"]
        self.parent.dependencies = []
        self.parent.contributors = ["CTTime developers"]
        self.parent.helpText = (
            "CT-TIME radiomics signature (Bernatowicz et al., J Immunother Cancer 2025;13:e009140): delineate each "
            "RECIST lesion, compute P(T-cell inflamed) per lesion (> 0.5 inflamed) and its patient aggregates, "
            "colour the segments by score and export lesions.csv / patients.csv. Research use only: scores against "
            "the demo reference or any reference of fewer than 20 lesions are NOT CLINICALLY CALIBRATED.")
        self.parent.acknowledgementText = (
            "Model and scripts: CT-TIME-public (K. Bernatowicz, VHIO, CC BY 4.0). Features: pyradiomics "
            "(van Griethuysen et al., Cancer Res 2017), whose definitions CTTime's engine computes. Sample data: "
            "IBSI / TCIA Soft-tissue-Sarcoma (CC BY 3.0).")


@parameterNodeWrapper
class CTTimeParameterNode:
    patientId: str
    timepoint: Annotated[str, Choice(list(CTTimeMRML.TIMEPOINT_CHOICES))] = "BS"
    ctVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    limitToWindow: bool = True
    standardization: Annotated[str, Choice([REFERENCE_FILE, SCENE_COHORT])] = REFERENCE_FILE
    referenceFile: pathlib.Path = DEMO_REFERENCE
    perturbations: Annotated[int, WithinRange(0, 100)] = default_perturbations("signature")  # engine scoring
    outputFolder: pathlib.Path = pathlib.Path.home() / "CTTime"
    results: slicer.vtkMRMLTableNode
    segmentEditor: slicer.vtkMRMLSegmentEditorNode


class CTTimeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None
        self._writingTags = False
        self.studies = []
        self.results = None
        self.live = None  # LiveScores of the study scored last
        self.liveTimer = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CTTime.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CTTimeLogic()

        self.addObserver(slicer.mrmlScene, slicer.vtkMRMLScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.vtkMRMLScene.EndCloseEvent, self.onSceneEndClose)

        editor = self.ui.segmentEditorWidget
        editor.setMRMLScene(slicer.mrmlScene)
        editor.segmentationNodeSelectorVisible = False
        editor.sourceVolumeNodeSelectorVisible = False
        available = set(editor.availableEffectNames())
        editor.setEffectNameOrder([name for name in EFFECT_ORDER if name in available])
        editor.unorderedEffectsVisible = False

        self.ui.lesionTableWidget.setColumnCount(len(LESION_COLUMNS))
        self.ui.lesionTableWidget.setHorizontalHeaderLabels(LESION_COLUMNS)
        self.liveTimer = qt.QTimer()
        self.liveTimer.setSingleShot(True)
        self.liveTimer.setInterval(LIVE_DELAY_MS)
        self.liveTimer.connect("timeout()", self.onLiveTimer)
        self.ui.legendLabel.setPixmap(qt.QPixmap(LEGEND_IMAGE))
        self.ui.outputPathLineEdit.filters = ctk.ctkPathLineEdit.Dirs

        self.ui.computeButton.connect("clicked(bool)", self.onCompute)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.screenshotButton.connect("clicked(bool)", self.onScreenshot)
        self.ui.boardButton.connect("clicked(bool)", self.onBoard)
        self.ui.boardButton.setVisible(self.logic.boardAvailable())
        self.ui.dicomButton.connect("clicked(bool)", self.onDicom)
        self.ui.exportAllFeaturesButton.connect("clicked(bool)", self.onExportAllFeatures)
        self.ui.proposeButton.connect("clicked(bool)", self.onProposeLesions)
        self.initializeParameterNode()

    def cleanup(self):
        self.liveTimer.stop()
        self.ui.segmentEditorWidget.setActiveEffect(None)
        self.disconnectParameterNode()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()
        self.ui.segmentEditorWidget.setupViewObservations()

    def exit(self):
        self.ui.segmentEditorWidget.setActiveEffect(None)  # as Slicer's Segment Editor: no effect left running
        self.ui.segmentEditorWidget.removeViewObservations()
        self.disconnectParameterNode()

    def onSceneStartClose(self, caller, event):
        self.ui.segmentEditorWidget.setActiveEffect(None)
        self.setParameterNode(None)
        self.results, self.studies, self.live = None, [], None

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        node = self._parameterNode
        if not node.ctVolume:
            node.ctVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if not node.segmentEditor:
            node.segmentEditor = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode", "CTTimeSegmentEditor")
        self.updateGui()

    def setParameterNode(self, parameterNode):
        self.disconnectParameterNode()
        self._parameterNode = parameterNode
        if self._parameterNode:
            # connectParametersToGui, not connectGui: Slicer 5.8's connectGui returns no tag to disconnect with
            widgets = {widget.property("SlicerParameterName"): widget for widget in vars(self.ui).values()
                       if widget.property("SlicerParameterName")}
            self._parameterNodeGuiTag = self._parameterNode.connectParametersToGui(widgets)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)

    def disconnectParameterNode(self):
        """Unbind the panel's widgets from the parameter node (the node stays the panel's)."""
        if self._parameterNode and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
        self._parameterNodeGuiTag = None

    def updateGui(self, caller=None, event=None):
        node = self._parameterNode
        if node is None:
            return
        editor = self.ui.segmentEditorWidget
        if node.segmentEditor:
            editor.setMRMLSegmentEditorNode(node.segmentEditor)
        editor.setSegmentationNode(node.segmentation)
        if node.segmentation:  # a source volume without a segmentation is an error in the Segment Editor
            editor.setSourceVolumeNode(node.ctVolume)
        self.logic.limitEditingToWindow(node.segmentEditor, node.limitToWindow)
        useReference = node.standardization == REFERENCE_FILE
        self.ui.referencePathLineEdit.setEnabled(useReference)
        self.ui.referenceWarningLabel.setText(self.logic.referenceWarning(node.referenceFile) if useReference else
                                              "Cohort mode: z-scores over every lesion of the scene's CTTime "
                                              "studies (needs at least 2 lesions).")
        ready = bool(node.ctVolume and node.segmentation and node.patientId.strip())
        self.ui.computeButton.setEnabled(ready)
        self.ui.computeButton.setToolTip("" if ready else "Enter a patient ID and select the CT and segmentation.")
        self.ui.exportButton.setEnabled(self.results is not None)
        self.ui.screenshotButton.setEnabled(self.results is not None)
        self.ui.boardButton.setEnabled(self.results is not None)
        self.ui.dicomButton.setEnabled(self.results is not None)
        self.ui.exportAllFeaturesButton.setEnabled(self.results is not None)
        self.observeSegmentation(node.segmentation)

    # --- lesion list: location and target flag kept as segment tags -------------------------------------------

    def observeSegmentation(self, segmentationNode):
        segmentation = segmentationNode.GetSegmentation() if segmentationNode else None
        if segmentation is self._observedSegmentation:
            return
        if self.live is not None and self.live.study.segmentation_node is not segmentationNode:
            self.live = None  # live scores belong to the segmentation they were computed for
        if self._observedSegmentation is not None:
            for event in self.logic.segmentationEditEvents():
                self.removeObserver(self._observedSegmentation, event, self.refreshLesionList)
        self._observedSegmentation = segmentation
        if segmentation is not None:
            for event in self.logic.segmentationEditEvents():
                self.addObserver(segmentation, event, self.refreshLesionList)
        self.refreshLesionList()

    def refreshLesionList(self, caller=None, event=None):
        if self._writingTags:
            return
        if self.live is not None and caller is not None:
            self.liveTimer.start()  # (re)started by every change: scores follow once the edit pauses
        segmentationNode = self._parameterNode.segmentation if self._parameterNode else None
        table = self.ui.lesionTableWidget
        self._writingTags = True
        try:
            rows = self.logic.lesionRows(segmentationNode)
            table.setRowCount(len(rows))
            for index, (segmentId, name, location, target) in enumerate(rows):
                table.setItem(index, 0, qt.QTableWidgetItem(name))
                score, status = self.logic.liveScoreText(self.live, segmentId)
                table.setItem(index, 3, qt.QTableWidgetItem(score))
                table.setItem(index, 4, qt.QTableWidgetItem(status))
                locationBox = qt.QComboBox()
                locationBox.addItems(list(LOCATIONS))
                locationBox.setCurrentIndex(LOCATIONS.index(location))
                locationBox.connect("currentIndexChanged(int)",
                                    lambda i, s=segmentId: self.onLocationChanged(s, LOCATIONS[i]))
                targetBox = qt.QCheckBox()
                targetBox.checked = target
                targetBox.connect("toggled(bool)", lambda on, s=segmentId: self.onTargetChanged(s, on))
                table.setCellWidget(index, 1, locationBox)
                table.setCellWidget(index, 2, targetBox)
        finally:
            self._writingTags = False
        table.resizeColumnsToContents()

    def onLiveTimer(self):
        """Score again the lesions whose segment changed since they were last scored (see CTTimeMRML.live)."""
        if self.live is None:
            return
        self._writingTags = True  # recolouring and tagging the rescored segments is no edit of the lesions
        try:
            with slicer.util.tryWithErrorDisplay("CT-TIME could not update the live scores.", waitCursor=True):
                updated = self.logic.updateLiveScores(self.live)
        except Exception:  # shown to the user by tryWithErrorDisplay
            logging.exception("CT-TIME live scores failed")
            updated = {}
        finally:
            self._writingTags = False
        if updated:
            self.refreshLesionList()

    def onLocationChanged(self, segmentId, location):
        self._writingTags = True
        try:
            self.logic.setLocation(self._parameterNode.segmentation, segmentId, location)
        finally:
            self._writingTags = False

    def onTargetChanged(self, segmentId, target):
        self._writingTags = True
        try:
            self.logic.setTarget(self._parameterNode.segmentation, segmentId, target)
        finally:
            self._writingTags = False

    # --- actions -------------------------------------------------------------------------------------------------

    def ensureDependencies(self):
        """Install what scoring needs and Slicer lacks (Resources/requirements.txt: wheels only, no compiler); False
        when packages are still missing. Slicer >= 5.12 asks through slicer.packaging, older Slicer here."""
        missing = self.logic.missingPackages()
        if not missing:
            return True
        try:  # Slicer >= 5.12; Slicer does not import slicer.packaging at start-up
            packaging = importlib.import_module("slicer.packaging")
        except ImportError:
            packaging = None
        if packaging is not None:
            requirements = packaging.load_requirements(self.resourcePath("requirements.txt"))
            try:
                packaging.pip_ensure(requirements, skip_packages=SLICER_PACKAGES, requester="CTTime")
            except Exception as exc:  # RuntimeError: the user declined; CalledProcessError: pip failed
                reason = "Nothing was installed." if isinstance(exc, RuntimeError) else \
                    self.logic.installFailureMessage(missing)
                message = (f"{reason} CT-TIME cannot score without " + ", ".join(missing) + ": press Compute again "
                           "to install them.")
                self.ui.summaryLabel.setText(message)
                slicer.util.warningDisplay(message, windowTitle="CTTime")
                return False
            importlib.invalidate_caches()
            return not self.logic.missingPackages()
        return self.installAfterAsking(missing, "CT-TIME needs Python packages that Slicer does not include: "
                                       + ", ".join(missing) + " (no compiler needed).\n\nInstall them now? This "
                                       "needs internet access.")

    def installAfterAsking(self, missing, question, packages=None):
        """Ask, then pip-install ``missing``; False when ``packages`` (default: scoring's) are still missing."""
        if not slicer.util.confirmOkCancelDisplay(question, windowTitle="CTTime"):
            return False
        try:
            with slicer.util.tryWithErrorDisplay(self.logic.installFailureMessage(missing), waitCursor=True):
                self.logic.installPackages(missing)
        except Exception:  # the error dialog has been shown
            return False
        return not self.logic.missingPackages(packages)

    def ensureOptional(self, packages, question):
        """The packages of an optional action (the board's matplotlib, pyradiomics), installed after asking."""
        missing = self.logic.missingPackages(packages)
        return not missing or self.installAfterAsking(missing, question.format(", ".join(missing)), packages)

    def onCompute(self):
        if not self.ensureDependencies():
            return
        from CTTimeLib.core.errors import Cancelled
        from CTTimeLib.scoring.standardization import COHORT

        node = self._parameterNode
        cohort = node.standardization == SCENE_COHORT
        studies = self.logic.studiesToScore(node.segmentation, node.ctVolume, node.patientId.strip(), node.timepoint,
                                            cohort)
        dialog = slicer.util.createProgressDialog(parent=self.parent, value=0, maximum=100,
                                                  labelText="Extracting features...", windowTitle="CT-TIME")

        def progress(done, total, message):
            dialog.maximum = total
            dialog.value = done
            dialog.labelText = f"Extracting features: {message}"
            slicer.app.processEvents()

        results = None
        try:
            with slicer.util.tryWithErrorDisplay("CT-TIME could not score the lesions.", waitCursor=True):
                try:
                    results = self.logic.compute(studies, COHORT if cohort else node.referenceFile, progress,
                                                 lambda: dialog.wasCanceled, node.perturbations)
                except Cancelled:
                    self.ui.summaryLabel.setText("Cancelled: nothing was changed.")
        except Exception:  # shown to the user by tryWithErrorDisplay
            logging.exception("CT-TIME computation failed")
        finally:
            dialog.close()
        if results is None:
            return
        if not node.results:
            node.results = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "CT-TIME results")
        self.studies, self.results = studies, results
        self._writingTags = True
        try:
            self.logic.showResults(studies, results, node.results)
            self.live = self.logic.startLiveScores(studies[0], results)
        finally:
            self._writingTags = False
        self.refreshLesionList()
        self.ui.summaryLabel.setText("\n".join(self.logic.summaryLines(results)))
        self.updateGui()

    def onProposeLesions(self):
        node = self._parameterNode
        if not (node.ctVolume and node.segmentation):
            slicer.util.warningDisplay("Select the CT and the segmentation first.", windowTitle="CTTime")
            return
        if not self.ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay("CT-TIME could not propose lesions from the lines.", waitCursor=True):
            names, warnings = self.logic.proposeLesions(node.segmentation, node.ctVolume)
            self.refreshLesionList()
            text = f"Proposed {len(names)} lesion(s) from their lines: {', '.join(names)}. Check and edit them."
            if warnings:
                slicer.util.warningDisplay(text + "\n\n" + "\n".join(warnings), windowTitle="CTTime")
            else:
                self.ui.summaryLabel.setText(text)

    def onExport(self):
        folder = self._parameterNode.outputFolder
        with slicer.util.tryWithErrorDisplay(f"Export to {folder} failed.", waitCursor=True):
            files = self.logic.export(folder, self.results, self.studies)
            slicer.util.infoDisplay("Written:\n" + "\n".join(str(path) for path in files), windowTitle="CTTime")

    def onScreenshot(self):
        node = self._parameterNode
        path = run_folder.screenshot_path(node.outputFolder, node.patientId, node.timepoint)
        with slicer.util.tryWithErrorDisplay(f"Screenshot {path} failed.", waitCursor=True):
            self.logic.tumourBoardScreenshot(path, self.logic.summaryLines(self.results))
            slicer.util.infoDisplay(f"Screenshot saved: {path}", windowTitle="CTTime")

    def onExportAllFeatures(self):
        """All 107 pyradiomics features of the scored studies, exported as the CLI's `--features all` writes them."""
        if not self.ensureOptional(self.logic.ALL_FEATURES_PACKAGES, (
                "Exporting all 107 features needs pyradiomics ({}), which Slicer does not include. On Slicer 5.10 "
                "and later it is compiled from source: this needs internet access and a C compiler (Windows: Visual "
                "Studio Build Tools; macOS: xcode-select --install; Linux: gcc). Scoring does not need it.\n\n"
                "Install it now?")):
            return
        from CTTimeLib.scoring.standardization import COHORT

        node = self._parameterNode
        folder = pathlib.Path(node.outputFolder)
        standardize = COHORT if node.standardization == SCENE_COHORT else node.referenceFile
        with slicer.util.tryWithErrorDisplay(f"Export of all features to {folder} failed.", waitCursor=True):
            files = self.logic.exportAllFeatures(folder, self.studies, standardize)
            slicer.util.infoDisplay("Written:\n" + "\n".join(str(path) for path in files), windowTitle="CTTime")

    def onBoard(self):
        if not self.ensureOptional(self.logic.BOARD_PACKAGES, "The tumour-board figure needs {}, which Slicer does "
                                   "not include (wheels, no compiler).\n\nInstall it now?"):
            return
        folder = pathlib.Path(self._parameterNode.outputFolder)
        with slicer.util.tryWithErrorDisplay(f"Tumour-board figure in {folder} failed.", waitCursor=True):
            files = self.logic.writeBoards(folder, self.results, self.studies)
            slicer.util.infoDisplay("Written:\n" + "\n".join(str(path) for path in files), windowTitle="CTTime")

    def onDicom(self):
        if not self.ensureOptional(self.logic.DICOM_PACKAGES, "The DICOM SEG + SR export needs {}, which this "
                                   "Slicer does not include (wheels, no compiler).\n\nInstall it now?"):
            return
        folder = pathlib.Path(self._parameterNode.outputFolder)
        with slicer.util.tryWithErrorDisplay(f"DICOM export to {folder} failed.", waitCursor=True):
            files, skipped = self.logic.exportDicom(folder, self.results, self.studies)
        text = "\n".join(["Written:"] + [str(path) for path in files] if files else ["No DICOM file written."])
        if skipped:
            text += "\n\nNo DICOM SEG/SR for:\n" + "\n".join(skipped)
        if not files:
            slicer.util.warningDisplay(text, windowTitle="CTTime")
        elif slicer.util.confirmYesNoDisplay(text + "\n\nAdd the files to Slicer's DICOM database?",
                                             windowTitle="CTTime"):
            with slicer.util.tryWithErrorDisplay("Adding the files to the DICOM database failed.", waitCursor=True):
                self.logic.addToDicomDatabase(files)


class CTTimeLogic(ScriptedLoadableModuleLogic):
    """Slicer-side actions; the MRML <-> CTTimeLib work is CTTimeMRML's."""

    BOARD_PACKAGES = CTTimeMRML.BOARD_PACKAGES  # what the tumour-board figure needs besides scoring
    DICOM_PACKAGES = CTTimeMRML.DICOM_PACKAGES  # what the DICOM SEG + SR export needs (bundled from Slicer 5.12)
    ALL_FEATURES_PACKAGES = CTTimeMRML.ALL_FEATURES_PACKAGES  # what the 107-feature export needs

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._extractor = None

    def getParameterNode(self):
        return CTTimeParameterNode(super().getParameterNode())

    @staticmethod
    def lesionRows(segmentationNode):
        """(segment ID, name, location, target) of every segment; each segment gets its location tag."""
        rows = []
        for segmentId, segment in CTTimeMRML.segments(segmentationNode) if segmentationNode else []:
            try:
                location = CTTimeMRML.segment_location(segment)
            except CTTimeError:  # a tag typed elsewhere that is no known location: choose one in the panel
                location = "other"
            CTTimeMRML.set_location(segment, location)
            rows.append((segmentId, segment.GetName(), location, CTTimeMRML.is_target(segment)))
        return rows

    @staticmethod
    def setLocation(segmentationNode, segmentId, location):
        CTTimeMRML.set_location(segmentationNode.GetSegmentation().GetSegment(segmentId), location)

    @staticmethod
    def setTarget(segmentationNode, segmentId, target):
        CTTimeMRML.set_target(segmentationNode.GetSegmentation().GetSegment(segmentId), target)

    @staticmethod
    def missingPackages(packages=None):
        return CTTimeMRML.missing_packages(packages)

    @staticmethod
    def segmentationEditEvents():
        return CTTimeMRML.edit_events()

    @staticmethod
    def studiesToScore(segmentationNode, volumeNode, patientId, timepoint, cohort):
        """The study being edited (remembered on its segmentation node) and, in cohort mode, every other
        CTTime study of the scene."""
        study = CTTimeMRML.Study(segmentationNode, volumeNode, patientId, timepoint)
        CTTimeMRML.remember_study(study)
        return CTTimeMRML.scene_studies(slicer.mrmlScene, study) if cohort else [study]

    @staticmethod
    def proposeLesions(segmentationNode, volumeNode, marksFile=None):
        """A proposed segment from each line markup of the scene (or line of ``marksFile``); (their names, the
        proposals' warnings)."""
        lesions = CTTimeMRML.propose_segments(segmentationNode, volumeNode, CTTimeMRML.scene_lines(slicer.mrmlScene),
                                              marksFile)
        return [lesion.lesion_id for lesion in lesions], CTTimeMRML.proposal_warnings(lesions)

    @staticmethod
    def summaryLines(results):
        return CTTimeMRML.summary_lines(results)

    @staticmethod
    def export(folder, results, studies):
        return CTTimeMRML.export(folder, results, studies)

    @staticmethod
    def ctDicomFiles(volumeNode):
        """The files of a CT volume loaded from Slicer's DICOM database (its DICOM.instanceUIDs), else []."""
        database = slicer.dicomDatabase
        uids = (volumeNode.GetAttribute("DICOM.instanceUIDs") or "").split()
        files = [database.fileForInstance(uid) for uid in uids] if database is not None else []
        return files if files and all(files) else []

    def exportDicom(self, folder, results, studies):
        """DICOM SEG + SR of each study whose CT came from the DICOM database: the files written, and a line for
        each study without them saying why."""
        files, skipped = [], []
        for study in studies:
            ctFiles = self.ctDicomFiles(study.volume_node)
            if not ctFiles:
                skipped.append(f"{study.patient_id} {study.timepoint}: the CT {study.volume_node.GetName()} was not "
                               "loaded from Slicer's DICOM database (load it with the DICOM module)")
                continue
            try:
                files += CTTimeMRML.write_dicom(folder, results, study, ctFiles)
            except CTTimeError as exc:
                skipped.append(f"{study.patient_id} {study.timepoint}: {exc}")
        return files, skipped

    @staticmethod
    def addToDicomDatabase(files):
        """Index the files into Slicer's DICOM database (copied into it)."""
        indexer = ctk.ctkDICOMIndexer()
        for path in files:
            indexer.addFile(slicer.dicomDatabase, str(path), True)
        indexer.waitForImportFinished()

    @staticmethod
    def writeBoards(folder, results, studies):
        return [path for study in studies for path in CTTimeMRML.write_board(folder, results, study)]

    @staticmethod
    def limitEditingToWindow(segmentEditorNode, enabled):
        """Let effects change only voxels within the -100..300 HU re-segmentation window (or lift the limit)."""
        if segmentEditorNode is None:
            return
        segmentEditorNode.SetSourceVolumeIntensityMask(bool(enabled))
        segmentEditorNode.SetSourceVolumeIntensityMaskRange(*CTTimeMRML.HU_WINDOW)

    @staticmethod
    def referenceWarning(path):
        """Text under the reference selector: its source and size, and why it is not calibrated (if so)."""
        missing = CTTimeMRML.missing_packages()
        if missing:  # a fresh Slicer: reading a reference needs them (standardization imports pandas)
            return "The reference is read once " + ", ".join(missing) + " are installed: Compute installs them."
        from CTTimeLib.scoring import standardization
        from CTTimeLib.scoring.signature import load_model

        try:  # checked for the model's features: a file off their scale is refused here already
            reference = standardization.load(str(path), load_model().features)
        except Exception as exc:  # shown in the panel; Compute reports it again
            return f"Cannot use this reference: {exc}"
        warning = reference.warning
        text = f"{reference.source} (n={reference.n_lesions} lesions)"
        return f"{text}\n{warning}" if warning else text

    @staticmethod
    def installPackages(missing):
        """pip-install the missing packages with slicer.util.pip_install (pyradiomics builds against Slicer's
        numpy, without isolation)."""
        if "pyradiomics" in missing:
            slicer.util.pip_install(["numpy", "versioneer"])
            slicer.util.pip_install(["--no-build-isolation", "pyradiomics"])
        others = [name for name in missing if name != "pyradiomics"]
        if others:  # Slicer's pydicom pinned: a newer highdicom would replace it until Slicer restarts (5.10)
            slicer.util.pip_install(CTTimeMRML.pinned_requirements(others))
        importlib.invalidate_caches()

    @staticmethod
    def installFailureMessage(missing):
        if "pyradiomics" not in missing:
            return "Installing " + ", ".join(missing) + " failed. Check the internet connection and retry."
        return ("Installing pyradiomics failed. Check the internet connection; building pyradiomics needs a C compiler "
                "(Windows: Visual Studio Build Tools; macOS: xcode-select --install; Linux: gcc). You can retry from "
                "the Python console: slicer.util.pip_install(['--no-build-isolation', 'pyradiomics']). Scoring does "
                "not need it.")

    def compute(self, studies, standardize, progress=None, cancelled=None, perturbations=0):
        """Score the studies with CTTime's engine (the CLI's `--features signature`)."""
        from CTTimeLib.scoring.engine import EngineExtractor

        self._extractor = self._extractor or EngineExtractor()
        return CTTimeMRML.compute(studies, standardize, progress, cancelled, extractor=self._extractor,
                                  perturbations=perturbations)

    @staticmethod
    def exportAllFeatures(folder, studies, standardize):
        """Score the studies with pyradiomics (all 107 features) and export the CLI's files; the paths written."""
        from CTTimeLib.scoring.extraction import FeatureExtractor

        results = CTTimeMRML.compute(studies, standardize, extractor=FeatureExtractor())
        return CTTimeMRML.export(folder, results, studies)

    @staticmethod
    def startLiveScores(study, results):
        """Keep the scores of ``study``'s lesions current while its segments are edited (CTTimeMRML.live)."""
        return CTTimeMRML.LiveScores(study, results)

    @staticmethod
    def updateLiveScores(live):
        return live.update()

    @staticmethod
    def liveScoreText(live, segmentId):
        """(score, status) as the lesion list shows them: empty before the first Compute."""
        return live.text(segmentId) if live is not None else ("", "")

    def showResults(self, studies, results, tableNode):
        """Recolour and tag the segments, fill the table and show it in the layout beside the views."""
        for study in studies:
            CTTimeMRML.apply_results(study, results)
        CTTimeMRML.fill_table_node(tableNode, results, CTTimeMRML.targets(studies))
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:  # --no-main-window
            return
        layoutManager.setLayout(slicer.modules.tables.logic().GetLayoutWithTable(layoutManager.layout))
        selectionNode = slicer.app.applicationLogic().GetSelectionNode()
        selectionNode.SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()

    @staticmethod
    def tumourBoardScreenshot(path, lines):
        """PNG of the whole layout with the CT-TIME colour legend and the summary below it."""
        import ScreenCapture

        if slicer.app.layoutManager() is None:
            raise RuntimeError("Screenshots need Slicer's main window (views); start Slicer without --no-main-window.")
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        slicer.util.forceRenderAllViews()
        viewsFile = path.with_name(f".{path.stem}.views.png")  # the views alone; never left as the output
        ScreenCapture.ScreenCaptureLogic().captureImageFromView(None, str(viewsFile))
        views, legend = qt.QImage(str(viewsFile)), qt.QImage(LEGEND_IMAGE)
        viewsFile.unlink()
        lineHeight = 18
        width = max(views.width(), legend.width() + 20)
        canvas = qt.QImage(width, views.height() + legend.height() + lineHeight * (len(lines) + 1) + 20,
                           qt.QImage.Format_ARGB32)
        canvas.fill(qt.QColor("white"))
        painter = qt.QPainter(canvas)
        painter.drawImage(0, 0, views)
        painter.drawImage(10, views.height() + 10, legend)
        painter.setPen(qt.QColor("black"))
        top = views.height() + legend.height() + 10 + lineHeight
        for number, line in enumerate(lines + ["CT-TIME (Bernatowicz et al. 2025). Research use only."]):
            painter.drawText(10, top + number * lineHeight, line)
        painter.end()
        with atomic_path(path) as temporary:
            if not canvas.save(temporary, "PNG"):
                raise RuntimeError(f"Cannot write {path}.")
        return path

    @staticmethod
    def boardAvailable():
        return importlib.util.find_spec("CTTimeLib.figures.tumour_board") is not None


class CTTimeTest(ScriptedLoadableModuleTest):
    """In a real Slicer: a lesion made with Threshold + Islands inside the sample lesion's box, scored end to end."""

    def setUp(self):
        """A clear scene and scoring's packages: under --testing nothing installs them (pip_ensure skips), so
        setUp installs them, or skips the test saying what to install."""
        slicer.mrmlScene.Clear(0)
        missing = CTTimeLogic.missingPackages()
        if missing:
            try:
                CTTimeLogic.installPackages(missing)
            except Exception as exc:  # pip failed (no network, no wheel)
                logging.warning(f"Installing {', '.join(missing)} failed: {exc}")
        if CTTimeLogic.missingPackages():
            self.skipTest("CT-TIME's self-test needs " + ", ".join(CTTimeLogic.missingPackages()) + ", which could not "
                          "be installed: install them (slicer.util.pip_install) and run the test again.")

    def runTest(self):
        self.setUp()
        self.test_CTTime_threshold_islands_lesion()

    def test_CTTime_threshold_islands_lesion(self):
        import csv

        import numpy as np
        from CTTimeLib.core import colormap, tags

        self.delayDisplay("Loading the sample CT STS_019")
        volume = slicer.util.loadVolume(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"))
        label = slicer.util.loadLabelVolume(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"))
        voxels = np.argwhere(slicer.util.arrayFromVolume(label) > 0)
        low, high = voxels.min(axis=0), voxels.max(axis=0) + 1
        box = np.zeros(slicer.util.arrayFromVolume(volume).shape, dtype=np.uint8)
        box[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = 1

        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "STS_019 lesions")
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        boxId = segmentationNode.GetSegmentation().AddEmptySegment("", "box")
        slicer.util.updateSegmentBinaryLabelmapFromArray(box, segmentationNode, boxId, volume)
        lesionId = segmentationNode.GetSegmentation().AddEmptySegment("", "LU_1")

        self.delayDisplay("Threshold + Islands inside the sample lesion's box")
        editorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        editor = slicer.qMRMLSegmentEditorWidget()
        editor.setMRMLScene(slicer.mrmlScene)
        editor.setMRMLSegmentEditorNode(editorNode)
        editor.setSegmentationNode(segmentationNode)
        editor.setSourceVolumeNode(volume)
        editor.setCurrentSegmentID(lesionId)
        editorNode.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
        editorNode.SetMaskSegmentID(boxId)
        editorNode.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)
        CTTimeLogic.limitEditingToWindow(editorNode, True)
        editor.setActiveEffectByName("Threshold")
        effect = editor.activeEffect()
        effect.setParameter("MinimumThreshold", str(CTTimeMRML.HU_WINDOW[0]))
        effect.setParameter("MaximumThreshold", str(CTTimeMRML.HU_WINDOW[1]))
        effect.self().onApply()
        editor.setActiveEffectByName("Islands")
        effect = editor.activeEffect()
        effect.setParameter("Operation", "KEEP_LARGEST_ISLAND")
        effect.setParameter("MinimumSize", "100")
        effect.self().onApply()
        segmentationNode.RemoveSegment(boxId)
        lesion = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, lesionId, volume)
        self.assertGreater(int(lesion.sum()), 100)
        self.assertEqual(int((lesion * (1 - box)).sum()), 0)

        self.delayDisplay("Computing CT-TIME against the demo reference")
        segment = segmentationNode.GetSegmentation().GetSegment(lesionId)
        CTTimeMRML.set_target(segment, True)
        study = CTTimeMRML.Study(segmentationNode, volume, "STS_019", "BS")
        CTTimeMRML.remember_study(study)
        logic = CTTimeLogic()
        results = logic.compute([study], DEMO_REFERENCE)
        tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "CT-TIME results")
        logic.showResults([study], results, tableNode)

        score = float(results.lesions["ct_time_score"].iloc[0])
        self.assertTrue(0.0 < score < 1.0)
        for got, expected in zip(segment.GetColor(), colormap.score_color(score)):
            self.assertAlmostEqual(got, expected, places=5)
        self.assertEqual(CTTimeMRML.get_tag(segment, tags.SCORE_TAG), f"{score:.6f}")
        self.assertEqual(CTTimeMRML.get_tag(segment, tags.LOCATION_TAG), "lung")
        self.assertEqual(CTTimeMRML.get_tag(segment, tags.TARGET_TAG), "true")
        self.assertIn("NOT CLINICALLY CALIBRATED", CTTimeMRML.get_tag(segment, tags.STANDARDIZATION_TAG))
        self.assertEqual(tableNode.GetNumberOfRows(), 1 + 4)
        self.assertEqual(tableNode.GetCellText(0, 2), "LU_1")
        self.assertEqual(tableNode.GetCellText(0, 4), "yes")

        self.delayDisplay("Exporting")
        folder = pathlib.Path(slicer.app.temporaryPath) / "CTTimeTest"
        files = CTTimeMRML.export(folder, results, [study])
        with open(files[0], newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        self.assertEqual(len(rows), 1)
        self.assertAlmostEqual(float(rows[0]["ct_time_score"]), score, places=12)
        self.assertTrue(files[2].exists())
        self.delayDisplay("Test passed")
