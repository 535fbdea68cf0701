"""A fresh-clone walk through the README's command lines that need no weights and no Slicer:
each command is taken verbatim from the README (so a README edit that breaks one fails here) and
run for real in an empty folder, with ``python`` / ``.venv/bin/python`` meaning this interpreter."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SOURCE_ROOTS = ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")

#: README command -> what its output must show (an independent expectation, not the code's constant)
COMMANDS = {
    ".venv/bin/python -m DAPAtlasLib phantom out/phantom --size small --sex F --lesions 12": None,
    "python -m DAPAtlasLib labels --format term.json": None,
    'python -m LIMISLib parse "it spills into the fat"': "guided",
    "python -m LIMISLib models list": "grounding-dino-tiny",
}


def readme_command(command: str) -> list[str]:
    """The command as the README writes it (comments after # dropped), split like a shell would."""
    lines = [line.split("  #")[0].strip() for line in README.splitlines()]
    assert command in lines, f"README no longer has the line {command!r}"
    words = shlex.split(command)
    assert re.fullmatch(r"(\.venv/bin/)?python", words[0])
    return [sys.executable, *words[1:]]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_readme_command_runs_in_a_fresh_folder(tmp_path, command):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / folder) for folder in SOURCE_ROOTS)
    env["SLICER_ANATOMY_WEIGHTS_DIR"] = str(tmp_path / "weights")
    result = subprocess.run(
        readme_command(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    expected = COMMANDS[command]
    if expected:
        assert expected in result.stdout
    if "phantom out/phantom" in command:
        info = json.loads((tmp_path / "out" / "phantom" / "phantom.json").read_text())
        assert info["sex"] == "F" and len(info["lesions"]) == 12
        assert {p.name for p in (tmp_path / "out" / "phantom").iterdir()} >= {
            "ct.nii.gz",
            "labels.nii.gz",
            "lesions.nii.gz",
            "overview.png",
        }
    if "term.json" in command:
        assert json.loads(result.stdout)  # valid JSON on stdout
