"""PythonQt's `qt` and `ctk` modules, mimicked on real Qt widgets (PySide6, offscreen) for the Slicer test layer.

Inside Slicer, Python sees Qt through PythonQt; Slicer's own Python code (util, parameterNodeWrapper,
ScriptedLoadableModule) and CTTime.py rely on these of its differences from PySide6, mimicked here and nowhere else:

- one `qt` module holding the classes of QtCore, QtGui, QtWidgets and QtUiTools (``qt.QWidget``, ``qt.QTimer``, ...);
- a Qt property of any QObject is a Python attribute, read and written by name, and it hides a method of the same
  name (``spinBox.value``, ``comboBox.currentIndex = 2``, ``checkBox.checked``, ``widget.name`` for objectName);
- ``obj.connect("signal(type)", slot)`` and ``obj.disconnect("signal(type)", slot)``
  (``install()`` patches Qt's classes themselves, in the layer's own process, so widgets Qt makes behave so too);
- ``qt.QUiLoader`` builds a .ui with the stand-ins below, Qt's own classes as they are (``type(w) == qt.QSpinBox``);
- the ctk and qMRML widgets the CTTime panel uses, as minimal stand-ins on real Qt widgets (Slicer's are C++):
  ``ctkCollapsibleButton`` (a QGroupBox), ``ctkPathLineEdit`` (a QLineEdit), ``qMRMLWidget``,
  ``qMRMLNodeComboBox`` (a QComboBox over a real vtkMRMLScene) and ``qMRMLSegmentEditorWidget`` (no effects: it
  keeps its nodes and active effect, and logs the critical error Slicer's C++ logs for a source volume set before a
  segmentation). The other classes the parameterNodeWrapper's connectors compare against are empty placeholders.
"""

import logging
import re
import types

from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets

_SIGNATURE = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")
_PYTHON_TYPES = {"int": int, "bool": bool, "double": float, "float": float, "QString": str, "const QString&": str}


def _signal(obj, signature):
    match = _SIGNATURE.match(signature)
    if not match:
        raise ValueError(f"not a Qt signal signature: {signature!r}")
    name, arguments = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
    signal = _original_getattribute(obj, name)
    types_ = [_PYTHON_TYPES.get(a) for a in arguments]
    if arguments and all(types_):
        try:
            return signal[types_[0] if len(types_) == 1 else tuple(types_)]
        except (KeyError, IndexError, TypeError):
            pass
    return signal


_original_getattribute = QtCore.QObject.__getattribute__


def _connect(self, signature, slot):
    return _signal(self, signature).connect(slot)


def _disconnect(self, signature, slot):
    return _signal(self, signature).disconnect(slot)


_PYTHONQT_METHODS = {"connect": _connect, "disconnect": _disconnect, "className": lambda self: type(self).__name__}


def _getattribute(self, name):
    if name in _PYTHONQT_METHODS:  # PySide would find QObject's static connect first
        return types.MethodType(_PYTHONQT_METHODS[name], self)
    return _original_getattribute(self, name)


def _accessor(cls, names):
    for name in names:
        method = getattr(cls, name, None)
        if callable(method):
            return method
    return None


def install():
    """Give every QObject class of QtCore, QtGui and QtWidgets PythonQt's attributes: each Qt property a Python
    property (through its C++ getter and setter), ``name`` for objectName, and connect/disconnect by signature."""
    classes = [getattr(module, name) for module in (QtCore, QtGui, QtWidgets) for name in dir(module)]  # loads all
    classes = [cls for cls in classes if isinstance(cls, type) and issubclass(cls, QtCore.QObject)]
    accessors = []
    for cls in classes:  # every getter and setter first: a property set on a class hides its method
        meta = cls.staticMetaObject
        for index in range(meta.propertyOffset(), meta.propertyCount()):
            name = meta.property(index).name()
            capital = name[0].upper() + name[1:]
            getter = _accessor(cls, (name, "is" + capital, "has" + capital))
            if getter is not None:
                accessors.append((cls, name, getter, _accessor(cls, ("set" + capital,))))
    accessors.append((QtCore.QObject, "name", QtCore.QObject.objectName, QtCore.QObject.setObjectName))
    for cls, name, getter, setter in accessors:
        setattr(cls, name, property(getter, setter))
    QtCore.QObject.__getattribute__ = _getattribute


# --- ctk and qMRML stand-ins ---------------------------------------------------------------------------------------

class qMRMLWidget(QtWidgets.QWidget):
    """A widget with an MRML scene; setting it reaches the node selectors inside (as the .ui's connections do)."""

    mrmlSceneChanged = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scene = None

    def setMRMLScene(self, scene):
        self._scene = scene
        for child in self.findChildren(QtWidgets.QWidget):
            if isinstance(child, qMRMLNodeComboBox):
                child.setMRMLScene(scene)
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self):
        return self._scene


class ctkCollapsibleButton(QtWidgets.QGroupBox):
    """ctk's collapsible section: a titled group box (its ``text`` is the title)."""

    @property
    def text(self):
        return self.title

    @text.setter
    def text(self, value):
        self.setTitle(value)

    def event(self, event):  # the .ui's "text" arrives as a dynamic property
        if event.type() == QtCore.QEvent.DynamicPropertyChange and bytes(event.propertyName()) == b"text":
            self.setTitle(self.property("text"))
        return super().event(event)


class ctkPathLineEdit(QtWidgets.QLineEdit):
    """ctk's path field: ``currentPath`` and the ``currentPathChanged(QString)`` signal."""

    Dirs, Files, Drives, NoDot, NoDotDot = 1, 2, 4, 0x2000, 0x4000
    currentPathChanged = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.filters, self.nameFilters = self.Files, []
        self.textChanged.connect(self.currentPathChanged.emit)

    @property
    def currentPath(self):
        return QtWidgets.QLineEdit.text.fget(self)

    @currentPath.setter
    def currentPath(self, value):
        self.setText(str(value))


class qMRMLNodeComboBox(QtWidgets.QComboBox):
    """Slicer's node selector over a real scene: lists the nodes of ``nodeTypes``, with "None" when enabled."""

    currentNodeChanged = QtCore.Signal(object)
    currentNodeIDChanged = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.addEnabled = self.removeEnabled = self.renameEnabled = False
        self._scene, self._ids, self._observations = None, [], []
        self.currentIndexChanged.connect(self._emitCurrentNode)

    @property
    def nodeTypes(self):  # set by the .ui as a dynamic property
        return list(QtCore.QObject.property(self, "nodeTypes") or [])

    @nodeTypes.setter
    def nodeTypes(self, value):
        QtCore.QObject.setProperty(self, "nodeTypes", list(value))
        self._refill()

    @property
    def noneEnabled(self):
        return bool(QtCore.QObject.property(self, "noneEnabled"))

    @noneEnabled.setter
    def noneEnabled(self, value):
        QtCore.QObject.setProperty(self, "noneEnabled", bool(value))
        self._refill()

    def setMRMLScene(self, scene):
        for observed, tag in self._observations:
            observed.RemoveObserver(tag)
        self._scene, self._observations = scene, []
        if scene is not None:
            for event in (scene.NodeAddedEvent, scene.NodeRemovedEvent, scene.EndCloseEvent):
                self._observations.append((scene, scene.AddObserver(event, lambda *args: self._refill())))
        self._refill()

    def _refill(self):
        current = self.currentNode()
        nodes = []
        if self._scene is not None:
            for nodeType in self.nodeTypes:
                nodes += [n for n in self._nodes(nodeType) if n not in nodes]
        self._ids = ([None] if self.noneEnabled else []) + [node.GetID() for node in nodes]
        self.blockSignals(True)
        QtWidgets.QComboBox.clear(self)
        QtWidgets.QComboBox.addItems(self, ["None" if i is None else self._scene.GetNodeByID(i).GetName()
                                            for i in self._ids])
        self.blockSignals(False)
        self.setCurrentNode(current if current is not None and current.GetID() in self._ids else None)

    def _nodes(self, nodeType):
        collection = self._scene.GetNodesByClass(nodeType)
        return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]

    def currentNode(self):
        index = self.currentIndex
        node_id = self._ids[index] if 0 <= index < len(self._ids) else None
        return self._scene.GetNodeByID(node_id) if node_id and self._scene is not None else None

    def setCurrentNode(self, node):
        node_id = node.GetID() if node is not None else None
        if node_id not in self._ids and node_id is not None:
            self._refill()
        index = self._ids.index(node_id) if node_id in self._ids else -1
        if index == self.currentIndex:
            return
        QtWidgets.QComboBox.setCurrentIndex(self, index)

    def _emitCurrentNode(self, index):
        node = self.currentNode()
        self.currentNodeChanged.emit(node)
        self.currentNodeIDChanged.emit(node.GetID() if node is not None else "")


class qMRMLSegmentEditorWidget(qMRMLWidget):
    """The Segment Editor's panel without its effects: it keeps its nodes, effect order and active effect.

    Like Slicer's C++ (qMRMLSegmentEditorWidget::setSourceVolumeNode), a source volume set before the segmentation
    and the segment editor node is refused with a critical error in the log."""

    EFFECTS = ("Paint", "Draw", "Erase", "Level tracing", "Grow from seeds", "Fill between slices", "Margin",
               "Hollow", "Smoothing", "Scissors", "Islands", "Logical operators", "Mask volume", "Threshold")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.segmentationNodeSelectorVisible = self.sourceVolumeNodeSelectorVisible = True
        self.unorderedEffectsVisible = True
        self._editorNode = self._segmentationNode = self._sourceVolumeNode = None
        self._effectOrder, self._activeEffect, self.viewsObserved = [], None, False
        self._label = QtWidgets.QLabel("Segment Editor", self)  # what a rendering of the panel shows in its place
        self._label.setWordWrap(True)
        self._label.setFrameShape(QtWidgets.QFrame.StyledPanel)
        QtWidgets.QVBoxLayout(self).addWidget(self._label)

    def availableEffectNames(self):
        return list(self.EFFECTS)

    def setEffectNameOrder(self, names):
        self._effectOrder = list(names)
        self._label.setText("Segment Editor (Slicer's own panel here) with the effects: " + ", ".join(names))

    def effectNameOrder(self):
        return list(self._effectOrder)

    def setMRMLSegmentEditorNode(self, node):
        self._editorNode = node

    def mrmlSegmentEditorNode(self):
        return self._editorNode

    def setSegmentationNode(self, node):
        self._segmentationNode = node

    def segmentationNode(self):
        return self._segmentationNode

    def setSourceVolumeNode(self, node):
        if self._editorNode is None or self._segmentationNode is None:
            if node is not None:
                logging.critical("qMRMLSegmentEditorWidget::setSourceVolumeNode failed: need to set segment editor "
                                 "and segmentation nodes first")
            return
        self._sourceVolumeNode = node

    def sourceVolumeNode(self):
        return self._sourceVolumeNode

    def setActiveEffectByName(self, name):
        self._activeEffect = name

    def setActiveEffect(self, effect):
        self._activeEffect = effect

    def activeEffect(self):
        return self._activeEffect

    def setupViewObservations(self):
        self.viewsObserved = True

    def removeViewObservations(self):
        self.viewsObserved = False


class ctkMessageBox(QtWidgets.QMessageBox):
    """ctk's message box, never shown: ``exec_`` records the text in ``shown`` and answers as ``accept`` says
    (True: the Ok/Yes button, False: Cancel/No), standing in for the user."""

    shown = []
    accept = True
    text = detailedText = windowTitle = ""  # plain attributes here: the box is never shown
    standardButtons = icon = None

    def exec_(self):
        ctkMessageBox.shown.append(f"{self.windowTitle}: {self.text}" + (f"\n{self.detailedText}"
                                                                         if self.detailedText else ""))
        buttons = QtWidgets.QMessageBox.StandardButton
        offered = self.standardButtons if self.standardButtons is not None else buttons.Ok
        for yes, no in ((buttons.Ok, buttons.Cancel), (buttons.Yes, buttons.No), (buttons.Retry, buttons.Close)):
            if offered & yes:
                return yes if ctkMessageBox.accept else no
        return buttons.Ok


class _Placeholder(QtWidgets.QWidget):
    """A ctk/qMRML class the CTTime panel does not use; it exists so that connectors can compare against it."""


CTK_CLASSES = {"ctkCollapsibleButton": ctkCollapsibleButton, "ctkPathLineEdit": ctkPathLineEdit,
               "ctkMessageBox": ctkMessageBox}
MRML_CLASSES = {"qMRMLWidget": qMRMLWidget, "qMRMLNodeComboBox": qMRMLNodeComboBox,
                "qMRMLSegmentEditorWidget": qMRMLSegmentEditorWidget}


class QUiLoader(QtUiTools.QUiLoader):
    """Builds a .ui with the ctk and qMRML stand-ins (Qt's own classes as Qt builds them)."""

    def createWidget(self, className, parent=None, name=""):
        cls = CTK_CLASSES.get(className) or MRML_CLASSES.get(className)
        if cls is None:
            return super().createWidget(className, parent, name)
        widget = cls(parent)
        widget.setObjectName(name)
        return widget


def qt_module():
    """The `qt` module as PythonQt gives it (call install() first)."""
    qt = types.ModuleType("qt", "PythonQt's qt module, mimicked on PySide6 (slicer_layer/pythonqt.py).")
    for source in (QtCore, QtGui, QtWidgets):
        for name in dir(source):
            if name.startswith("Q") and isinstance(getattr(source, name), type):
                setattr(qt, name, getattr(source, name))
    qt.Qt = QtCore.Qt
    qt.QUiLoader = QUiLoader
    return qt


def placeholder(name):
    """The empty stand-in of a ctk or qMRML class, one per name."""
    if name not in _placeholders:
        _placeholders[name] = type(name, (_Placeholder,), {"__module__": __name__})
    return _placeholders[name]


_placeholders = {}


def ctk_module():
    ctk = types.ModuleType("ctk", "ctk stand-ins for the Slicer test layer (slicer_layer/pythonqt.py).")
    for name, cls in CTK_CLASSES.items():
        setattr(ctk, name, cls)

    def missing(name):
        if name.startswith("ctk"):
            return placeholder(name)
        raise AttributeError(name)

    ctk.__getattr__ = missing
    return ctk
