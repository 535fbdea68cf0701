"""What a newcomer reads first: the environment note, troubleshooting, how to cite, the changelog,
and that the README's main-job promises hold (options listed in --help are the documented ones)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_the_environment_is_named_once_near_the_top():
    top = README[: README.index("## Install into 3D Slicer")]
    assert "source .venv/bin/activate" in top and ".venv/bin/python" in top
    assert "./scripts/run_main_job.sh" in top and "./scripts/run_tests.sh" in top  # Quick start kept


def test_troubleshooting_covers_venv_offline_and_rerunning():
    text = section("Troubleshooting")
    assert "No module named DAPAtlasLib" in text
    assert "--from" in text and "use-folder" in text and "--no-index" in text
    assert "out/main_job/" in text and "--overwrite" in text


def test_resources_per_size_cover_every_preset():
    from AnatomyCommonLib.anatomy.phantom.materials import SIZE_PRESETS

    for name, preset in SIZE_PRESETS.items():
        spacing = " x ".join(f"{s:g}" for s in preset["spacing_ras_mm"]) + " mm"
        assert re.search(rf"^\| {name}( \(default\))? \| {re.escape(spacing)} \|", README, re.M), name
    assert "4.8 GB" in README


def test_citation_file_cites_the_software_and_each_module():
    yaml = pytest.importorskip("yaml")  # PyYAML comes with the optional extras, not the core
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert data["cff-version"] == "1.2.0" and data["type"] == "software" and data["authors"]
    titles = " ".join(reference["title"] for reference in data["references"])
    assert "DAP Atlas" in titles and "LIMIS" in titles and "Every Component Counts" in titles
    assert all(reference.get("authors") for reference in data["references"])
    text = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(- )?doi\s*:|10\.\d{4,}/", text, re.M | re.I)  # no DOI is known: none invented
    assert "CITATION.cff" in section("How to cite")


def test_changelog_has_unreleased_and_the_first_release():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text and "## [0.1.0]" in text


def test_limis_training_data_sources_and_layouts_are_documented(tmp_path):
    from LIMISLib.training_data import LAYOUTS, discover_cases

    assert "github.com/alexanderjaus/AtlasDataset" in README
    for layout in LAYOUTS:
        assert f"{layout}=ROOT`" in README
    # the documented layouts are the ones discover_cases reads (a case built from the README text)
    dap = tmp_path / "dap"
    (dap / "images").mkdir(parents=True)
    (dap / "labels").mkdir()
    (dap / "images" / "c1_0000.nii.gz").write_bytes(b"")
    (dap / "labels" / "c1.nii.gz").write_bytes(b"")
    total = tmp_path / "total" / "s0001"
    (total / "segmentations").mkdir(parents=True)
    (total / "ct.nii.gz").write_bytes(b"")
    word = tmp_path / "word"
    (word / "imagesVal").mkdir(parents=True)
    (word / "labelsVal").mkdir()
    (word / "imagesVal" / "w1.nii.gz").write_bytes(b"")
    (word / "labelsVal" / "w1.nii.gz").write_bytes(b"")
    assert "`ROOT/images/<case>.nii.gz` + `ROOT/labels/<case>.nii.gz`" in README
    assert [c.case_id for c in discover_cases("dap", dap)] == ["c1"]
    assert "`ROOT/<case>/ct.nii.gz` + `ROOT/<case>/segmentations/<structure>.nii.gz`" in README
    assert [c.case_id for c in discover_cases("totalsegmentator", tmp_path / "total")] == ["s0001"]
    assert "`ROOT/imagesTr|imagesVal|imagesTs/<case>.nii.gz`" in README
    assert [c.case_id for c in discover_cases("word", word)] == ["w1"]
