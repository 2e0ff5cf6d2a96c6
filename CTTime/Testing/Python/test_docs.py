"""The README and docs/ say what the code does: every `cttime` command they show names real subcommands and
options, the README's first score runs as written, and every page the README links to exists."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from CTTimeLib.cli.commands import build_parser

REPO = Path(__file__).resolve().parents[3]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _code_lines(text):
    """Lines of indented (4 spaces) or fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            yield line.strip()


def commands(text):
    """Every `cttime ...` command of a page's code blocks, continuation lines joined, comments dropped."""
    found, current = [], None
    for line in _code_lines(text):
        if current is None and re.match(r"^(\.venv/bin/)?cttime\s", line):
            current = ""
        if current is not None:
            current += " " + line.rstrip("\\").strip()
            if not line.endswith("\\"):
                found.append(shlex.split(current, comments=True))
                current = None
    return found


def _subparsers(parser):
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def _check(tokens):
    parser = _subparsers(build_parser())[tokens[1]]
    rest = tokens[2:]
    if tokens[1] == "reference":
        parser, rest = _subparsers(parser)[rest[0]], rest[1:]
    options = [t.strip("[]").split("=")[0] for t in rest if t.strip("[]").startswith("-")]
    unknown = [o for o in options if o not in parser._option_string_actions]
    assert not unknown, f"{' '.join(tokens)}: no option {', '.join(unknown)}"


def test_every_documented_command_exists():
    shown = [(page.name, tokens) for page in PAGES for tokens in commands(page.read_text(encoding="utf-8"))]
    assert len(shown) >= 15, shown  # the pages show many commands: an extraction that finds few is broken
    checked = 0
    for page, tokens in shown:
        if tokens[1] == "COMMAND":  # `cttime COMMAND --help`
            continue
        assert tokens[1] in _subparsers(build_parser()), f"{page}: no command {tokens[1]!r}"
        _check(tokens)
        checked += 1
    assert checked >= 15


def test_the_check_can_fail():
    with pytest.raises(AssertionError, match="no option --no-such-option"):
        _check(["cttime", "score", "--no-such-option"])


def test_readme_links_exist():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", text)
    assert links and all((REPO / link).exists() for link in links), links
    assert len(text.encode("utf-8")) < 10240  # a newcomer's README: the rest is in docs/


def test_readme_first_score_runs_as_written(tmp_path):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## A first score", 1)[1].split("##", 1)[0]
    runs = commands(block)
    assert [tokens[1] for tokens in runs] == ["score", "board"]
    folder = runs[0][runs[0].index("--out") + 1]
    assert folder.startswith("~/") and runs[1][2] == folder  # the first score writes outside the repository
    out = str(tmp_path / "first-score")
    for tokens in runs:
        arguments = [out if t == folder else t for t in tokens[1:]]
        done = subprocess.run([sys.executable, "-m", "CTTimeLib.cli", *arguments], cwd=REPO, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "first-score" / "lesions.csv").exists()
    assert (tmp_path / "first-score" / "STS_019_BS_board.png").exists()
