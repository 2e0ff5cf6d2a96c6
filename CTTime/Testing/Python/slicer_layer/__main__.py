"""python -m slicer_layer VERSION_DIR module:function FOLDER: load the Slicer version, run the scenario."""

import importlib
import os
import sys
import traceback

from . import application

version_dir, scenario, folder = sys.argv[1:4]
status = 0
try:
    application.load(version_dir, folder)
    module_name, function = scenario.split(":")
    getattr(importlib.import_module(module_name), function)(application)
except BaseException:
    traceback.print_exc()
    status = 1
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)  # no teardown of Qt and VTK objects in an arbitrary order
