"""One Slicer version's Python layer, loaded as ``slicer`` in this process, with CTTime's module in it.

``load(version)`` runs Slicer's own ``slicer/__init__.py`` of that version, puts the slicer-core wheels' real
libraries (MRML, segmentations, module logics) into it as Slicer's kits would, adds the Qt side from
``pythonqt.py`` and a stand-in for ``slicer.app`` (no main window: no layout manager, no views). The files of
``slicer`` (util, parameterNodeWrapper, packaging, ScriptedLoadableModule, ...) are then the version's own.
Only what the C++ application would do is stood in for:

- ``slicer.app``: testing mode off, no layout manager, a module manager whose unload signal is real;
- the module panel (``slicer.modules.cttime.widgetRepresentation()``), whose ``reload`` makes a new CTTimeWidget from
  the reloaded CTTime.py, as qSlicerScriptedLoadableModuleWidget::reload does;
- the pip runner (``slicer.util._executePythonModule`` / ``executePythonModule``): ``PIP_CALLS`` records its
  arguments and ``PIP_RESULT(args)`` decides what it does (default: fail as pip without network does);
- the user at a dialog: ``pythonqt.ctkMessageBox`` (``shown``, ``accept``).

Load one version per process: the layer replaces ``qt``, ``ctk`` and ``slicer`` in ``sys.modules``.
"""

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtWidgets  # noqa: E402

from . import pythonqt  # noqa: E402

MODULE_FILE = Path(__file__).resolve().parents[3] / "CTTime.py"
PIP_CALLS = []


def pip_fails(args):
    raise subprocess.CalledProcessError(1, ["PythonSlicer", "-m", "pip", *args], "no network in the test layer")


PIP_RESULT = [pip_fails]  # a list so that a scenario can swap the runner's behaviour


class ModuleManager(QtCore.QObject):
    moduleAboutToBeUnloaded = QtCore.Signal(str)


class Application:
    """``slicer.app`` of a Slicer started with --no-main-window, testing mode off."""

    applicationName = "Slicer"
    temporaryPath = ""

    def __init__(self, qapp, temporary):
        self._qapp, self._moduleManager = qapp, ModuleManager()
        self.temporaryPath = str(temporary)
        self.overrideCursors = 0

    testing = False  # Slicer started with --testing

    def testingEnabled(self):
        return self.testing

    def layoutManager(self):
        return None

    def moduleManager(self):
        return self._moduleManager

    def processEvents(self):
        self._qapp.processEvents()

    def thread(self):
        return self._qapp.thread()

    def setOverrideCursor(self, cursor):
        self.overrideCursors += 1

    def restoreOverrideCursor(self):
        self.overrideCursors -= 1

    def translate(self, context, text):
        return text

    def topLevelWidgets(self):
        return self._qapp.topLevelWidgets()

    def userSettings(self):
        return QtCore.QSettings()

    settings = userSettings


class ModulePanel(pythonqt.qMRMLWidget):
    """The panel Slicer gives a scripted module (qSlicerScriptedLoadableModuleWidget)."""

    def __init__(self):
        super().__init__()
        self.setLayout(QtWidgets.QVBoxLayout())
        self.isEntered = False
        self.widget = None

    def reload(self):
        """What the C++ panel does on reload: a new widget of the reloaded CTTime.py, set up (and entered if shown)."""
        import slicer

        self.widget = sys.modules["CTTime"].CTTimeWidget(self)
        self.widget.setup()
        slicer.modules.CTTimeWidget = self.widget
        if self.isEntered:
            self.widget.enter()


def _run_pip(module, args, *unused, **options):
    PIP_CALLS.append(list(args))
    PIP_RESULT[0](list(args))


def _qt_messages(kind, context, message):
    """Qt's log without the .ui's mrmlSceneChanged connections (qMRMLWidget.setMRMLScene does their work here)."""
    if "mrmlSceneChanged" not in message and "(sender name:" not in message and "(receiver name:" not in message:
        sys.stderr.write(message + "\n")


def load(version_dir, temporary):
    """Make ``slicer``, ``qt`` and ``ctk`` the given Slicer version's, on slicer-core and PySide6."""
    QtCore.qInstallMessageHandler(_qt_messages)
    pythonqt.install()
    qapp = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["Slicer"])
    sys.modules["qt"] = pythonqt.qt_module()
    sys.modules["ctk"] = pythonqt.ctk_module()
    import slicer_core

    for name in [n for n in sys.modules if n == "slicer" or n.startswith("slicer.")]:
        del sys.modules[name]
    package = Path(version_dir) / "slicer"
    spec = importlib.util.spec_from_file_location("slicer", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    slicer = importlib.util.module_from_spec(spec)
    sys.modules["slicer"] = slicer
    spec.loader.exec_module(slicer)
    for name in dir(slicer_core):  # the kits: Slicer's C++ libraries wrapped for Python
        if not name.startswith("_"):
            setattr(slicer, name, getattr(slicer_core, name))
    for name, cls in pythonqt.MRML_CLASSES.items():
        setattr(slicer, name, cls)
    for source in (package / "parameterNodeWrapper").glob("*.py"):  # the qMRML classes its connectors name
        for name in re.findall(r"slicer\.(qMRML\w+|qSlicer\w+)", source.read_text(encoding="utf-8")):
            if not hasattr(slicer, name):
                setattr(slicer, name, pythonqt.placeholder(name))
    slicer.app = Application(qapp, temporary)
    slicer.mrmlScene = slicer.vtkMRMLScene()
    slicer.mrmlScene.RegisterNodeClass(slicer.vtkMRMLSegmentEditorNode())  # the Segmentations module does this
    slicer.dicomDatabase = None
    slicer.modules.segmentations = types.SimpleNamespace(logic=slicer.vtkSlicerSegmentationsModuleLogic)
    import slicer.util

    for runner in ("_executePythonModule", "executePythonModule"):
        if hasattr(slicer.util, runner):
            setattr(slicer.util, runner, _run_pip)
    return slicer


def load_module():
    """Import CTTime.py as Slicer does at start-up and give it its panel: (module, panel)."""
    import slicer

    sys.path.insert(0, str(MODULE_FILE.parent))
    spec = importlib.util.spec_from_file_location("CTTime", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["CTTime"] = module
    spec.loader.exec_module(module)
    panel = ModulePanel()
    description = types.SimpleNamespace(path=str(MODULE_FILE))
    module.CTTime(description)
    slicer.modules.cttime = types.SimpleNamespace(path=str(MODULE_FILE), widgetRepresentation=lambda: panel)
    return module, panel


def show_module(panel):
    """Create the module's widget in its panel (setup) as Slicer does on first showing it; the widget."""
    panel.reload()
    return panel.widget


def enter(panel):
    panel.isEntered = True
    panel.widget.enter()


def leave(panel):
    panel.isEntered = False
    panel.widget.exit()
