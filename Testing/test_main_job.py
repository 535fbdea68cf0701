"""The main job (scripts/main_job.py) as a newcomer runs it: options validated first, every
documented combination runs at the tiny size, previous results survive a failed run, printed
paths are absolute, and CC-Metrics tables name the phantom's lesion ids."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule")


def run_job(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / folder) for folder in SOURCE_ROOTS)
    env["SLICER_ANATOMY_WEIGHTS_DIR"] = str(tmp_path / "no_weights")  # model steps skip in one line
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "main_job.py"), *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def load_main_job():
    spec = importlib.util.spec_from_file_location("main_job_under_test", ROOT / "scripts" / "main_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def previous_results(folder: Path) -> Path:
    folder.mkdir(parents=True)
    marker = folder / "from_the_last_run.txt"
    marker.write_text("keep me\n")
    return marker


@pytest.mark.parametrize(
    "options, complaint",
    [
        (["--size", "huge"], "tiny"),
        (["--sex", "X"], "'M'"),
        (["--lesions", "many"], "0..500"),
        (["--lesions", "-1"], "0..500"),
    ],
)
def test_a_bad_option_is_one_line_exit_2_and_touches_nothing(tmp_path, options, complaint):
    marker = previous_results(tmp_path / "out" / "main_job")
    result = run_job(tmp_path, "--out", "out/main_job", *options)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and complaint in lines[0] and "Traceback" not in result.stderr
    if options[0] == "--size":  # every size is listed
        assert all(size in lines[0] for size in ("tiny", "small", "medium", "realistic"))
    assert marker.read_text() == "keep me\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["main_job"]  # no staging left


def test_help_shows_defaults_spacings_and_exit_codes(tmp_path):
    result = run_job(tmp_path, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "(default: small)" in text and "(default: 12)" in text and "(default: M)" in text
    assert "tiny 6x6x6 mm" in text and "realistic 0.8x0.8x2 mm" in text
    assert "exit codes" in text


@pytest.mark.slow
@pytest.mark.parametrize("sex", ["M", "F"])
def test_every_sex_and_lesion_count_runs_at_the_tiny_size(tmp_path, sex):
    for lesions in range(4):
        result = run_job(
            tmp_path, "--out", "out/main_job", "--size", "tiny", "--sex", sex, "--lesions", str(lesions)
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        out = (tmp_path / "out" / "main_job").resolve()
        rows = list(
            csv.DictReader((out / "cc_metrics" / "components.csv").read_text(encoding="utf-8").splitlines())
        )
        assert len({row["component_id"] for row in rows}) <= lesions
        # every printed result path is absolute and exists after the swap
        printed = re.findall(r"^\s+\S+\s+(/\S+)$", result.stdout, re.M)
        assert printed and all(Path(p).is_absolute() and Path(p).exists() for p in printed)
        assert str(out) in result.stdout.splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["main_job"]


def test_a_failing_run_leaves_the_previous_results_in_place(tmp_path, monkeypatch, capsys):
    module = load_main_job()
    out = tmp_path / "main_job"
    marker = previous_results(out)

    def broken(out_folder, args, context):
        (out_folder / "half_written.txt").write_text("partial")
        raise RuntimeError("disk full\nsecond line")

    monkeypatch.setattr(module, "STEPS", [module.STEPS[0], ("a step that fails", broken)])
    code = module.main(["--out", str(out), "--size", "tiny", "--lesions", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "step 2/2" in err[0] and "disk full" in err[0] and str(out) in err[0]
    assert (
        sorted(p.name for p in out.iterdir()) == ["from_the_last_run.txt"]
        and marker.read_text() == "keep me\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main_job"]  # the staging folder is gone


def test_a_successful_run_replaces_the_previous_results(tmp_path, monkeypatch, capsys):
    module = load_main_job()
    out = tmp_path / "main_job"
    previous_results(out)
    monkeypatch.setattr(module, "STEPS", [module.STEPS[0]])
    assert module.main(["--out", str(out), "--size", "tiny", "--lesions", "1"]) == 0
    assert not (out / "from_the_last_run.txt").exists() and (out / "phantom").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main_job"]


@pytest.mark.parametrize("n", range(0, 14))
def test_perturbation_plan_never_asks_for_more_components_than_there_are(n):
    from AnatomyCommonLib.anatomy.phantom.sample_case import perturbation_counts

    counts = perturbation_counts(n)
    assert sum(counts.values()) <= n
    assert all(count >= 1 for count in list(counts.values())[: min(n, 4)])  # every kind while they last


def test_cc_tables_name_the_phantom_lesion_ids(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    from AnatomyCommonLib.anatomy.phantom import make_phantom

    figures = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    module = load_main_job()
    phantom = make_phantom("tiny", seed=3, sex="F", n_lesions=9)
    import argparse

    module.step_cc_metrics(tmp_path, argparse.Namespace(seed=3), {"phantom": phantom})
    printed = capsys.readouterr().out
    instances = np.asarray(phantom.lesions.array)
    voxel_ml = float(np.prod(phantom.lesions.spacing_mm)) / 1000.0
    # independent oracle: scipy's 26-connected components of the instance mask, matched by content
    components, n = ndimage.label(instances > 0, structure=np.ones((3, 3, 3)))
    expected = {
        tuple(sorted(int(v) for v in np.unique(instances[components == c]))): int((components == c).sum())
        for c in range(1, n + 1)
    }
    rows = list(
        csv.DictReader((tmp_path / "cc_metrics" / "components.csv").read_text(encoding="utf-8").splitlines())
    )
    seen = {}
    for row in rows:
        match = re.fullmatch(r"phantom lesion ([\d+]+): (\w+)", row["note"])
        assert match, row["note"]
        ids = tuple(sorted(int(i) for i in match.group(1).split("+")))
        seen[ids] = float(row["volume_ml"])
        if match.group(2) == "missed":
            assert row["detected"] in ("False", "0", "NO", "no")
            assert f"phantom lesion {match.group(1)} (CC component {row['component_id']})" in printed
    assert set(seen) == set(expected)
    for ids, voxels in expected.items():
        assert seen[ids] == pytest.approx(voxels * voxel_ml, rel=1e-6)
    # the components.png panel titles name the same phantom lesions beside the component ids
    titles = {axes.get_title() for figure in figures for axes in figure.axes}
    for row in rows:
        ids = re.fullmatch(r"phantom lesion ([\d+]+): \w+", row["note"]).group(1)
        assert any(t.startswith(f"#{row['component_id']} = lesion {ids} ") for t in titles), (row, titles)


def test_run_main_job_checks_options_before_setting_up_the_environment(tmp_path):
    """A typo on a fresh clone is reported at once, not after minutes of installing .venv."""
    import shutil

    (tmp_path / "scripts").mkdir()
    for name in ("run_main_job.sh", "main_job.py"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    presets = Path("AnatomyCommon/AnatomyCommonLib/anatomy/phantom/presets.py")
    (tmp_path / presets).parent.mkdir(parents=True)
    shutil.copy2(ROOT / presets, tmp_path / presets)
    # the set-up step is replaced by one that only leaves a trace: it must not be reached
    setup = tmp_path / "scripts" / "setup_env.sh"
    setup.write_text('#!/usr/bin/env bash\ntouch "$(dirname "$0")/../setup_was_run"\nexit 1\n')
    setup.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "run_main_job.sh"), "--size", "huge"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert "invalid choice: 'huge'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "setup_was_run").exists()
    # a valid option goes on to the set-up step
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "run_main_job.sh"), "--size", "tiny"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (tmp_path / "setup_was_run").exists() and result.returncode == 1
