"""Every sub-command's ``--help`` of the three Libs shows each option's default, the units that
matter, and the command's exit codes."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBS = ("DAPAtlasLib", "LIMISLib", "CCMetricsLib")


def command_paths(parser: argparse.ArgumentParser, path=()):
    """Every (path, parser) of the sub-command tree, from argparse's own data."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*path, name))


def help_text(lib: str, path: tuple[str, ...]) -> str:
    module = importlib.import_module(f"{lib}.__main__")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        module.main([*path, "--help"])
    assert exit_.value.code == 0
    return out.getvalue()


def option_entries(text: str) -> dict[str, str]:
    """Option string -> its help entry (joined lines) in a formatted help."""
    entries: dict[str, str] = {}
    current: list[str] = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            current = [line]
            for option in re.findall(r"(--?[\w-]+)", line.split("  ")[1] if "  " in line[2:] else line):
                entries[option] = current  # shared list, grows with the following lines
        elif current and line.startswith("    "):
            current.append(line)
        else:
            current = []
    return {k: " ".join(" ".join(v).split()) for k, v in entries.items()}


def cases():
    for lib in LIBS:
        module = importlib.import_module(f"{lib}.__main__")
        for path, parser in command_paths(module.build_parser()):
            if path:
                yield pytest.param(lib, path, parser, id=f"{lib} {' '.join(path)}")


@pytest.mark.parametrize("lib, path, parser", list(cases()))
def test_every_option_with_a_default_shows_it_and_exit_codes_are_listed(lib, path, parser):
    text = help_text(lib, path)
    entries = option_entries(text)
    is_leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    for action in parser._actions:
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or default == []
        ):
            continue
        entry = entries.get(action.option_strings[-1], "")
        assert "default" in entry.lower(), f"{lib} {' '.join(path)} {action.option_strings[-1]}: {entry!r}"
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            shown = {str(default), f"{default:g}" if isinstance(default, (int, float)) else default}
            assert any(s in entry for s in shown), f"{action.option_strings[-1]} hides {default!r}: {entry!r}"
    if is_leaf:
        assert "exit codes: 0" in " ".join(text.split())


@pytest.mark.parametrize(
    "lib, path, option, words",
    [
        ("CCMetricsLib", ("evaluate",), "--nsd-tolerance", ["mm", "1.0", "voxel"]),
        ("CCMetricsLib", ("evaluate",), "--connectivity", ["26", "6 faces"]),
        ("DAPAtlasLib", ("phantom",), "--size", ["tiny 6x6x6 mm", "realistic 0.8x0.8x2 mm"]),
        ("DAPAtlasLib", ("phantom",), "--sex", ["(default: M)"]),
        ("DAPAtlasLib", ("phantom",), "--seed", ["(default: 0)"]),
        ("DAPAtlasLib", ("segment",), "--device", ["auto"]),
        ("LIMISLib", ("train-lang2bbox",), "--steps", ["1000"]),
        ("LIMISLib", ("train-lang2bbox",), "--batch-size", ["8", "slices"]),
        ("LIMISLib", ("train-lang2bbox",), "--lora-rank", ["16"]),
        ("LIMISLib", ("segment-slice",), "--score-threshold", ["0.3", "0..1"]),
        ("LIMISLib", ("segment-slice",), "--device", ["cpu"]),
    ],
)
def test_units_and_meanings_are_in_the_help(lib, path, option, words):
    entry = option_entries(help_text(lib, path))[option]
    assert all(word in entry for word in words), entry


def test_parse_documents_exit_code_3_and_returns_it():
    text = " ".join(help_text("LIMISLib", ("parse",)).split())
    assert "3 the command is of kind 'unknown'" in text
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        str(ROOT / f) for f in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")
    )
    result = subprocess.run(
        [sys.executable, "-m", "LIMISLib", "parse", "--rules-only", "florp the zibble"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3 and '"unknown"' in result.stdout
