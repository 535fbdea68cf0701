"""Anatomy-stratified CC scores on a hand-built case (expected values worked out by hand)."""

import numpy as np
import pytest

from CCMetricsLib import evaluate
from CCMetricsLib.anatomy_strata import anatomy_strata, format_strata_table, tag_components
from CCMetricsLib.exceptions import GeometryMismatchError, InvalidParameterError

LIVER, KIDNEY_LEFT, SPLEEN = 13, 15, 26  # DAP Atlas ids (label_schema)


@pytest.fixture
def case():
    from AnatomyCommonLib.anatomy.label_schema import vertebra_id

    l1 = vertebra_id("L1")
    reference = np.zeros((4, 30, 30), np.uint8)
    atlas = np.zeros(reference.shape, np.int16)
    # ids follow the first voxel in C order: all components start on slice k=1
    reference[1, 2:4, 2:4] = 1  # #1: 4 voxels, all on the liver
    atlas[:, 0:6, 0:6] = LIVER
    reference[1, 2:4, 12:16] = 1  # #2: 8 voxels: 5 on kidney left (i 12..13 + 1 of 14), 3 on spleen
    atlas[:, 0:6, 10:14] = KIDNEY_LEFT
    atlas[1, 2, 14] = KIDNEY_LEFT
    atlas[:, 0:6, 14:20] = np.where(atlas[:, 0:6, 14:20] == 0, SPLEEN, atlas[:, 0:6, 14:20])
    reference[1, 20:22, 2:4] = 1  # #3: 4 voxels on background (no structure)
    reference[1, 20:22, 20:22] = 1  # #4: 4 voxels on vertebra L1
    atlas[:, 18:24, 18:24] = l1
    prediction = reference.copy()
    prediction[1, 2:4, 12:16] = 0  # #2 missed
    prediction[1, 21, 2:4] = 0  # #3 half found: Dice 2*2 / (4 + 2) = 2/3
    return reference, atlas, prediction, l1


def test_each_component_is_tagged_with_the_structures_it_lies_on_ranked_by_overlap(case):
    reference, atlas, _, l1 = case
    tags = tag_components(reference, atlas)
    assert [t["component_id"] for t in tags] == [1, 2, 3, 4]
    assert [(s["label_id"], s["voxels"]) for s in tags[0]["structures"]] == [(LIVER, 4)]
    assert [(s["label_id"], s["voxels"]) for s in tags[1]["structures"]] == [(KIDNEY_LEFT, 5), (SPLEEN, 3)]
    assert tags[1]["structures"][1]["fraction"] == pytest.approx(3 / 8)
    assert tags[1]["primary_structure"] == "kidney left" and tags[1]["primary_system"] == "urinary"
    assert tags[2]["primary_structure"] == "background"
    assert tags[3]["structures"][0]["label_id"] == l1 and tags[3]["primary_system"] == "vertebrae"


def test_scores_per_structure_and_system_with_primary_assignment(case):
    from AnatomyCommonLib.anatomy.label_schema import label_by_id

    reference, atlas, prediction, l1 = case
    result = evaluate(reference, prediction, metrics=("dice",))
    strata = anatomy_strata(result, reference, atlas)
    structures = {row["structure"]: row for row in strata.structures}
    assert set(structures) == {"liver", "kidney left", "background", label_by_id(l1).name}
    assert structures["liver"]["cc_dice"] == pytest.approx(1.0)
    assert structures["kidney left"]["cc_dice"] == 0.0 and structures["kidney left"]["n_missed"] == 1
    assert structures["background"]["cc_dice"] == pytest.approx(2 / 3)
    assert "spleen" not in structures  # #2 counts once, in its primary structure
    systems = {row["system"]: row for row in strata.systems}
    assert systems["digestive"]["n_components"] == 1 and systems["urinary"]["n_detected"] == 0
    assert systems["vertebrae"]["cc_dice"] == pytest.approx(1.0)
    assert sum(row["n_components"] for row in strata.systems) == 4
    assert "urinary" in format_strata_table(strata, ("dice",))


def test_any_assignment_counts_a_border_lesion_in_every_structure_it_touches(case):
    reference, atlas, prediction, _ = case
    result = evaluate(reference, prediction, metrics=("dice",))
    strata = anatomy_strata(result, reference, atlas, assignment="any")
    structures = {row["structure"]: row for row in strata.structures}
    assert structures["spleen"]["n_components"] == 1 and structures["spleen"]["cc_dice"] == 0.0
    systems = {row["system"]: row for row in strata.systems}
    assert systems["immune"]["n_missed"] == 1 and systems["urinary"]["n_missed"] == 1


def test_a_label_map_on_another_grid_or_with_foreign_values_is_refused(case):
    reference, atlas, prediction, _ = case
    result = evaluate(reference, prediction, metrics=("dice",))
    with pytest.raises(GeometryMismatchError, match="same grid"):
        anatomy_strata(result, reference, atlas[:, :, :20])
    bad = atlas.copy()
    bad[1, 2, 2] = 999
    with pytest.raises(InvalidParameterError, match="999"):
        anatomy_strata(result, reference, bad)
    with pytest.raises(InvalidParameterError, match="assignment"):
        anatomy_strata(result, reference, atlas, assignment="most")


def test_cli_anatomy_flag_prints_and_writes_the_strata(case, tmp_path, capsys):
    import csv

    from AnatomyCommonLib import Volume, write_volume
    from CCMetricsLib.__main__ import main

    reference, atlas, prediction, _ = case
    geometry = {"spacing_mm": (0.8, 0.8, 2.0), "origin_ras": (1.0, 2.0, 3.0)}
    write_volume(Volume.from_geometry(reference, **geometry), tmp_path / "ref.nii.gz")
    write_volume(Volume.from_geometry(prediction, **geometry), tmp_path / "model.nii.gz")
    write_volume(Volume.from_geometry(atlas.astype(np.uint8), **geometry), tmp_path / "atlas.nii.gz")
    out = tmp_path / "strata.csv"
    arguments = ["evaluate", "--reference", str(tmp_path / "ref.nii.gz")]
    arguments += ["--prediction", str(tmp_path / "model.nii.gz"), "--metrics", "dice"]
    arguments += ["--anatomy", str(tmp_path / "atlas.nii.gz"), "--anatomy-csv", str(out)]
    assert main(arguments) == 0
    assert "system: urinary" in capsys.readouterr().out
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    liver = next(r for r in rows if r["level"] == "structure" and r["structure"] == "liver")
    assert float(liver["cc_dice"]) == pytest.approx(1.0) and liver["prediction"] == "model"
    urinary = next(r for r in rows if r["level"] == "system" and r["system"] == "urinary")
    assert int(urinary["n_missed"]) == 1
    assert main(arguments[:-2]) == 0  # without --anatomy-csv: printed only
    out.unlink()
    assert main([*arguments[:-4], "--anatomy-csv", str(out)]) == 2  # the CSV needs --anatomy
    assert "needs --anatomy" in capsys.readouterr().err and not out.exists()
