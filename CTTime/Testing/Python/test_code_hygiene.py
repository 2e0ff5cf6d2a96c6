"""The project's Python files pass pyflakes: no undefined names, unused imports or unused variables (a name
missing from a rarely taken branch, such as an assertion's message, otherwise shows only when it runs)."""

import io
from pathlib import Path

from pyflakes.api import checkRecursive
from pyflakes.reporter import Reporter

REPO = Path(__file__).resolve().parents[3]


def test_pyflakes_finds_nothing():
    report = io.StringIO()
    folders = [str(REPO / "CTTime"), str(REPO / "benchmarks")]
    assert checkRecursive(folders, Reporter(report, report)) == 0, report.getvalue()
