"""Checks of the Slicer module that need no Slicer: the .ui, CMake listing, Python 3.9 syntax, API names, icons."""

import ast
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import slicer_api_usage
from CTTimeLib.core import colormap

HERE = Path(__file__).resolve().parent
MODULE_DIR = HERE.parents[1]
REPO = MODULE_DIR.parent
MODULE_PY = MODULE_DIR / "CTTime.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "CTTime.ui"
NAMES_FILE = HERE / "Data" / "slicer_api_names.txt"
SHARED_REFERENCE = REPO.parent / "shared" / "reference"


def _ui():
    return ET.parse(UI_FILE).getroot()


def _ui_widgets():
    return {w.get("name"): w for w in _ui().iter("widget")}


def _module_tree():
    return ast.parse(MODULE_PY.read_text(encoding="utf-8"))


def _parameter_fields():
    [node] = [n for n in ast.walk(_module_tree()) if isinstance(n, ast.ClassDef) and n.name == "CTTimeParameterNode"]
    return {item.target.id: ast.unparse(item.annotation) for item in node.body if isinstance(item, ast.AnnAssign)}


def _cmake_list(name):
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    block = re.search(rf"set\({name}\s+(.*?)\)", text, re.S)
    assert block, f"CTTime/CMakeLists.txt has no set({name} ...)"
    return block.group(1).split()


def _module_files():
    """Every file Slicer must install: all of CTTime/ except Testing, caches and the CMake file itself."""
    return sorted(p.relative_to(MODULE_DIR).as_posix() for p in MODULE_DIR.rglob("*")
                  if p.is_file() and p.relative_to(MODULE_DIR).parts[0] != "Testing" and "__pycache__" not in p.parts
                  and p.suffix != ".pyc" and p.name != "CMakeLists.txt")


# --- .ui ---------------------------------------------------------------------------------------------------------

def test_ui_top_level_is_a_qmrmlwidget_and_custom_widgets_are_declared():
    root = _ui()
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "CTTime"
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    assert {c for c in used if not c.startswith("Q")} <= declared
    names = [w.get("name") for w in root.iter("widget")]
    assert all(names) and len(names) == len(set(names)), "every widget needs its own objectName"


def test_every_self_ui_name_exists_in_the_ui():
    used = {node.attr for node in ast.walk(_module_tree()) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"}
    assert {"segmentEditorWidget", "computeButton", "lesionTableWidget", "legendLabel"} <= used
    assert used - set(_ui_widgets()) == set()


WIDGET_FOR_TYPE = [(r"^pathlib\.Path$", {"ctkPathLineEdit"}), (r"^bool$", {"QCheckBox"}), (r"^str$", {"QLineEdit"}),
                   (r"^Annotated\[int, WithinRange\(", {"QSpinBox"}),  # a bare int gets -2**31..2**31-1
                   (r"^Annotated\[str, Choice", {"QComboBox"}), (r"^slicer\.vtkMRML\w+Node$", {"qMRMLNodeComboBox"})]


def test_bound_widgets_match_parameter_node_fields():
    fields = _parameter_fields()
    bound = {}
    for name, widget in _ui_widgets().items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget
    assert set(bound) <= set(fields), set(bound) - set(fields)
    assert len(bound) >= 8
    for field, widget in bound.items():
        annotation = fields[field]
        [allowed] = [classes for pattern, classes in WIDGET_FOR_TYPE if re.match(pattern, annotation)]
        assert widget.get("class") in allowed, (field, annotation, widget.get("class"))
        if widget.get("class") == "qMRMLNodeComboBox":
            node_types = [s.text for p in widget.findall("property") if p.get("name") == "nodeTypes"
                          for s in p.iter("string")]
            assert node_types == [annotation.split(".")[1]]


def test_ui_connections_reach_existing_widgets():
    widgets = _ui_widgets()
    connections = list(_ui().iter("connection"))
    assert len(connections) == 3
    for connection in connections:
        assert connection.findtext("sender") in widgets and connection.findtext("receiver") in widgets
        assert connection.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        assert connection.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"


# --- CMake -------------------------------------------------------------------------------------------------------

def test_cmake_lists_every_script_and_resource():
    files = _module_files()
    scripts, resources = _cmake_list("MODULE_PYTHON_SCRIPTS"), _cmake_list("MODULE_PYTHON_RESOURCES")
    assert sorted(f for f in files if f.endswith(".py")) == sorted(scripts), "re-list CTTime/CMakeLists.txt"
    assert sorted(f for f in files if not f.endswith(".py")) == sorted(resources), "re-list CTTime/CMakeLists.txt"
    assert "CTTime.py" in scripts and "Resources/UI/CTTime.ui" in resources


def test_cmake_builds_the_module_with_tests_and_the_extension_is_described():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"slicerMacroBuildScriptedModule\(.*WITH_GENERIC_TESTS", text, re.S)
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    top = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    for needed in ("project(CTTime)", 'EXTENSION_CATEGORY "Quantification"', 'EXTENSION_DEPENDS "NA"',
                   "add_subdirectory(CTTime)", "find_package(Slicer REQUIRED)", "${Slicer_EXTENSION_CPACK}",
                   "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", 'EXTENSION_CONTRIBUTORS "CTTime developers"'):
        assert needed in top, needed
    s4ext = dict(line.split(" ", 1) for line in (REPO / "CTTime.s4ext").read_text(encoding="utf-8").splitlines()
                 if line and not line.startswith("#"))
    assert s4ext["category"] == "Quantification" and s4ext["depends"] == "NA"
    assert s4ext["homepage"] == "https://github.com/cttime/SlicerCTTime"
    assert s4ext["iconurl"].endswith("CTTime.png") and s4ext["screenshoturls"].startswith("https://")


def test_catalog_entry_matches_the_extension():
    """CTTime.json, the Extensions Index entry (schema slicer-extension-catalog-entry-schema v1.0.x: required
    $schema, category, scm_url; no other fields than the schema's), agrees with CMakeLists.txt and the .s4ext."""
    entry = json.loads((REPO / "CTTime.json").read_text(encoding="utf-8"))
    allowed = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "build_subdirectory", "enabled", "tier", "dicom_support_rule"}
    assert {"$schema", "category", "scm_url"} <= set(entry) <= allowed
    assert re.search(r"/slicer-extension-catalog-entry-schema-v1\.0\.\d+\.json#?$", entry["$schema"])
    top = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert f'EXTENSION_CATEGORY "{entry["category"]}"' in top
    assert re.search(r"^project\((\w+)\)", top, re.M).group(1) == Path(REPO / "CTTime.json").stem
    assert entry["build_dependencies"] == [] and 'EXTENSION_DEPENDS "NA"' in top
    s4ext = dict(line.split(" ", 1) for line in (REPO / "CTTime.s4ext").read_text(encoding="utf-8").splitlines()
                 if line and not line.startswith("#"))
    assert (entry["scm_url"], entry["scm_revision"]) == (s4ext["scmurl"], s4ext["scmrevision"])
    assert entry["build_subdirectory"] == s4ext["build_subdirectory"] and entry["tier"] in range(1, 6)
    assert (REPO / "LICENSE").is_file()


def test_no_helper_script_beside_the_module_file():
    # Slicer loads every .py in a module's folder as a module (qSlicerScriptedLoadableModule::setPythonSource).
    assert sorted(p.name for p in MODULE_DIR.glob("*.py")) == ["CTTime.py"]


# --- Python 3.9 --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", slicer_api_usage.MODULE_FILES, ids=lambda p: p.name)
def test_parses_as_python_3_9(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))
    for node in ast.walk(tree):  # "X | Y" annotations are evaluated at run time by parameterNodeWrapper
        annotation = getattr(node, "annotation", None) or getattr(node, "returns", None)
        if annotation is not None:
            assert not any(isinstance(n, ast.BinOp) for n in ast.walk(annotation)), ast.unparse(annotation)


# --- API names ---------------------------------------------------------------------------------------------------

def _name_sources():
    entries = {}
    for line in NAMES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sources = line.split("\t")
            entries[name] = sources.split(",")
    return entries


def test_every_api_name_the_module_uses_is_in_slicers_word_lists():
    known = set(_name_sources())
    on_core = {attribute for _, attribute in slicer_api_usage.slicer_class_attributes()}
    used = slicer_api_usage.used_names()
    assert len(used) > 100
    unknown = {name: where for name, where in used.items() if name not in known and name not in on_core}
    assert unknown == {}, f"not a known Slicer/CTK/VTK/Qt name (typo or guess?): {unknown}"


def test_slicer_class_constants_exist_in_slicer_core():
    slicer = pytest.importorskip("slicer", reason="slicer-core has wheels for Python >= 3.10")
    pairs = slicer_api_usage.slicer_class_attributes()
    assert ("vtkMRMLScene", "StartCloseEvent") in pairs
    for class_name, attribute in pairs:
        assert hasattr(getattr(slicer, class_name), attribute), f"slicer.{class_name}.{attribute}"
    import CTTimeMRML.live

    events = [name for name in CTTimeMRML.live.EDIT_EVENT_NAMES if hasattr(slicer.vtkSegmentation, name)]
    assert {"SegmentAdded", "SegmentRemoved", "SourceRepresentationModified"} <= set(events)


def test_word_list_copy_matches_its_source():
    if not (SHARED_REFERENCE / "slicer-api-names").is_dir():  # ../shared: in CI always (its absence fails there)
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{SHARED_REFERENCE} is not beside the repository")
    api_md = (SHARED_REFERENCE / "SLICER_API.md").read_text(encoding="utf-8")
    for name, sources in _name_sources().items():
        for source in sources:
            if source == "SLICER_API.md":  # a function, or a module of slicer (`slicer.packaging`)
                assert f"`{name}(" in api_md or f" {name}(" in api_md or f"`slicer.{name}`" in api_md, name
            elif source == "slicer-python":  # Slicer's own Python of every supported version (slicer-python/)
                for version in sorted((SHARED_REFERENCE / "slicer-python").glob("v*")):
                    assert any(name in path.read_text(encoding="utf-8") for path in version.rglob("*.py")), \
                        (name, version.name)
            else:
                words = set((SHARED_REFERENCE / "slicer-api-names" / source).read_text(encoding="utf-8").split())
                assert name in words, (name, source)


# --- icons -------------------------------------------------------------------------------------------------------

def _rgb(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))[..., :3].astype(int)


def test_legend_bar_is_the_score_colour_map():
    legend = _rgb(MODULE_DIR / "Resources" / "Icons" / "CTTimeLegend.png")
    for x in range(0, 256, 5):  # bar: rows 0-19, column x = score x / 255
        expected = [round(v * 255) for v in colormap.score_color(x / 255)]
        assert np.abs(legend[10, x] - expected).max() <= 1, x
    failed = [round(v * 255) for v in colormap.FAILED_COLOR]
    assert np.abs(legend[10, 285] - failed).max() <= 1


def test_icon_is_128_pixels_in_the_score_colours():
    icon = _rgb(MODULE_DIR / "Resources" / "Icons" / "CTTime.png")
    assert icon.shape[:2] == (128, 128)
    light_grey = [round(v * 255) for v in colormap.score_color(0.5)]  # left half: the uninflamed ramp up to 0.5
    assert np.abs(icon[64, 63] - light_grey).max() <= 1
    assert icon[64, 110, 0] > icon[64, 110, 1] + 100  # right half: the inflamed reds
    assert (icon[2, 2] == 255).all()  # white outside the disc


# --- nothing to install at import time ---------------------------------------------------------------------------

NOT_IN_SLICER = ("pandas", "radiomics", "yaml", "slicerio", "sklearn", "nrrd", "matplotlib")


def test_module_import_needs_only_what_slicer_bundles():
    """CTTime.py's module-level imports of our code must not pull in packages Slicer installs on first use."""
    import subprocess
    import sys

    ours = [node.module for node in _module_tree().body if isinstance(node, ast.ImportFrom)
            and node.module.split(".")[0] == "CTTimeLib"]
    ours += [alias.name for node in _module_tree().body if isinstance(node, ast.Import) for alias in node.names
             if alias.name.startswith("CTTime")]
    assert "CTTimeMRML" in ours
    code = (f"import sys; sys.path.insert(0, {str(MODULE_DIR)!r}); import " + ", ".join(ours)
            + f"; print(sorted(m for m in {NOT_IN_SLICER!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- packages ----------------------------------------------------------------------------------------------------

def test_scoring_requirements_need_no_compiler_and_are_installed_in_the_compute_action():
    """requirements.txt: what Compute needs beyond Slicer's own packages, no pyradiomics (the engine scores); the
    widget installs it with slicer.packaging.pip_ensure where Slicer has it (5.12), inside an action only."""
    import CTTimeMRML

    lines = CTTimeMRML.requirements()
    assert lines and not any("radiomics" in line.lower() for line in lines)
    assert set(CTTimeMRML.required_packages()) == {"pandas", "yaml", "slicerio", "nrrd"}
    assert CTTimeMRML.missing_packages() == []
    tree = _module_tree()
    calls = {node.func.attr: node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert "skip_packages=SLICER_PACKAGES" in ast.unparse(calls["pip_ensure"])
    [ensure] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "ensureDependencies"]
    source = ast.unparse(ensure)  # Slicer does not import slicer.packaging at start-up: hasattr() would be False
    assert "import_module('slicer.packaging')" in source and "hasattr(slicer" not in source and "pip_ensure" in source
    assert "load_requirements(self.resourcePath('requirements.txt'))" in source
    module_level = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "attr", "") in ("pip_install", "pip_ensure")
                   for statement in module_level for n in ast.walk(statement))
