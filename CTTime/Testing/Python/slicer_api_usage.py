"""Which Slicer / CTK / VTK / Qt API names the module's code uses (for test_slicer_module_static.py).

Every attribute name counts: methods called (``x.Name(...)``), properties read or set (``dialog.wasCanceled``,
``w.checked = ...``) and names reached from the ``slicer``, ``qt``, ``ctk`` or ``vtk`` modules
(``slicer.vtkSegmentation.SegmentAdded``). Names the files define themselves (functions, classes, self.X,
argparse options, the .ui's widget names), names of CTTimeLib / CTTimeMRML (with their dataclass fields) and
Python's own (str, list, pathlib, logging, argparse, unittest ...) are left out: what remains must be a real
Slicer / CTK / VTK / Qt (or numpy / pandas / SimpleITK) name.
"""

import argparse
import ast
import builtins
import csv
import dataclasses
import importlib
import importlib.util
import inspect
import logging
import os
import pathlib
import sys
import traceback
import typing
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[2]
UI_FILE = MODULE_DIR / "Resources" / "UI" / "CTTime.ui"
MODULE_FILES = [MODULE_DIR / "CTTime.py", MODULE_DIR / "CTTimeMRML" / "__init__.py",
                MODULE_DIR / "Scripts" / "CTTimeBatch.py"]


def _python_names():
    names = set(dir(builtins))
    for thing in (str, bytes, list, dict, set, tuple, int, float, object, pathlib.Path, os, os.path, sys, importlib,
                  importlib.util, logging, csv, csv.DictReader, argparse, argparse.ArgumentParser, unittest.TestCase,
                  dataclasses, typing, inspect, traceback, SystemExit):
        names |= set(dir(thing))
    return names


def _own_names(trees):
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                    isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)  # parameter node fields
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "add_argument":
                names |= {a.value.lstrip("-").replace("-", "_") for a in node.args if isinstance(a, ast.Constant)}
    return names | {widget.get("name") for widget in ET.parse(UI_FILE).getroot().iter("widget")}


def _library_names():
    sys.path.insert(0, str(MODULE_DIR))
    import CTTimeLib
    import CTTimeMRML

    names = set(dir(CTTimeMRML))
    packages = [CTTimeLib, CTTimeMRML]
    for info in [i for p in packages for i in __import__("pkgutil").walk_packages(p.__path__, f"{p.__name__}.")]:
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        names |= set(dir(module))
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == module.__name__:
                names |= set(dir(value))
                if dataclasses.is_dataclass(value):
                    names |= {f.name for f in dataclasses.fields(value)}
    for value in vars(CTTimeMRML).values():
        if dataclasses.is_dataclass(value):
            names |= {f.name for f in dataclasses.fields(value)}
    return names


def used_names(paths=MODULE_FILES):
    """{name: [file:line, ...]} of the Slicer-side names used by ``paths``."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}
    used = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                used.setdefault(node.attr, []).append(f"{path.name}:{node.lineno}")
    ignore = _python_names() | _own_names(trees.values()) | _library_names()
    return {name: where for name, where in used.items() if name not in ignore}


def slicer_class_attributes(paths=MODULE_FILES):
    """(class name, attribute) of every ``slicer.vtkSomething.Attribute`` reference: checkable on slicer-core."""
    pairs = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and \
                    isinstance(node.value.value, ast.Name) and node.value.value.id == "slicer" and \
                    node.value.attr.startswith("vtk"):
                pairs.add((node.value.attr, node.attr))
    return sorted(pairs)
