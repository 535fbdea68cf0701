"""Issue 14, items 1 and 4: errors instead of plausible numbers, one detection rule, finite worst
distance by default, one-line CLI errors and outputs written only after everything succeeded."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from AnatomyCommonLib import Volume, write_volume
from CCMetricsLib import evaluate
from CCMetricsLib.__main__ import main
from CCMetricsLib.exceptions import InvalidParameterError, LabelNotFoundError
from CCMetricsLib.synthetic import Sphere, sphere_mask


def labelled_volumes():
    labels = np.zeros((20, 24, 24), np.uint8)
    labels[4:9, 4:9, 4:9] = 1
    labels[12:16, 14:19, 14:19] = 3
    return labels, labels.copy()


# ---------------------------------------------------------------- absent label
def test_an_absent_label_is_an_error_naming_the_labels_present():
    reference, prediction = labelled_volumes()
    with pytest.raises(LabelNotFoundError, match=r"label 9 .*\[1, 3\]"):
        evaluate(reference, prediction, label=9)
    # a label only the prediction holds is a real (worst) result, not an error
    prediction[0:2, 0:2, 0:2] = 5
    result = evaluate(reference, prediction, label=5)
    assert result.mean["dice"] == 0.0 and result.counts["n_false_positive_components"] == 1


def test_cli_absent_label_exits_2_with_one_line_naming_the_labels(tmp_path):
    reference, prediction = labelled_volumes()
    write_volume(Volume.from_geometry(reference, (1.0, 1.0, 1.0)), tmp_path / "ref.nii.gz")
    write_volume(Volume.from_geometry(prediction, (1.0, 1.0, 1.0)), tmp_path / "pred.nii.gz")
    command = [sys.executable, "-m", "CCMetricsLib", *_evaluate_args(tmp_path)]
    run = subprocess.run(
        [*command, "--label", "9", "--json", str(tmp_path / "o.json")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "label 9" in lines[0] and "[1, 3]" in lines[0]
    assert not (tmp_path / "o.json").exists()


# ---------------------------------------------------------------- spacing order
def _two_boxes():
    reference = np.zeros((12, 20, 30), bool)
    reference[3:8, 5:14, 8:20] = True
    prediction = np.roll(reference, 2, axis=2)
    return reference, prediction


def test_anisotropic_raw_array_spacing_needs_an_axis_order():
    reference, prediction = _two_boxes()
    with pytest.raises(InvalidParameterError, match=r"spacing_order='kji'.*spacing_order='xyz'"):
        evaluate(reference, prediction, spacing=(3.0, 1.0, 0.5))
    # isotropic spacing and no spacing keep working without an order
    assert evaluate(reference, prediction, spacing=2.0).mean["hd"] == pytest.approx(4.0)
    assert evaluate(reference, prediction, spacing=(2.0, 2.0, 2.0)).mean["hd"] == pytest.approx(4.0)
    assert evaluate(reference, prediction).mean["hd"] == pytest.approx(2.0)


def test_both_axis_orders_give_the_nsd_of_monai_with_array_order_spacing():
    reference, prediction = _two_boxes()
    spacing_kji = (3.0, 1.0, 0.5)
    torch = pytest.importorskip("torch")
    SurfaceDiceMetric = pytest.importorskip("monai.metrics").SurfaceDiceMetric

    r = torch.from_numpy(np.stack([~reference, reference])[None].astype(np.float32))
    p = torch.from_numpy(np.stack([~prediction, prediction])[None].astype(np.float32))
    expected = float(SurfaceDiceMetric([0.6], include_background=False)(p, r, spacing=list(spacing_kji)))
    kji = evaluate(reference, prediction, spacing=spacing_kji, spacing_order="kji", nsd_tolerance=0.6)
    xyz = evaluate(reference, prediction, spacing=spacing_kji[::-1], spacing_order="xyz", nsd_tolerance=0.6)
    assert kji.mean["nsd"] == pytest.approx(expected, abs=1e-6)
    assert xyz.mean["nsd"] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(InvalidParameterError, match="spacing_order"):
        evaluate(reference, prediction, spacing=spacing_kji, spacing_order="zyx")


def test_a_volume_with_spacing_in_xyz_order_is_checked_against_its_geometry():
    reference, prediction = _two_boxes()
    ref = Volume.from_geometry(reference.astype(np.uint8), (0.5, 1.0, 3.0))  # spacing in (i, j, k)
    pred = ref.with_array(prediction.astype(np.uint8))
    assert evaluate(ref, pred, spacing=(0.5, 1.0, 3.0), spacing_order="xyz").mean["hd"] == pytest.approx(1.0)


# ---------------------------------------------------------------- detection rule and worst distance
def test_every_reference_component_is_detected_or_missed_even_with_a_nearby_prediction():
    reference = sphere_mask((44, 20, 20), [Sphere((10, 10, 10), 4.0), Sphere((32, 10, 10), 5.0)])
    prediction = reference.copy()
    prediction[22:] = False
    prediction[39:42, 9:12, 9:12] = True  # near the second sphere (k = 27..37), no overlap
    assert not np.any(prediction[22:] & reference[22:])
    result = evaluate(reference, prediction)
    counts = result.counts
    assert counts["n_detected"] + counts["n_missed"] == counts["n_reference_components"] == 2
    assert (counts["n_detected"], counts["n_missed"]) == (1, 1)
    assert counts["n_missed_with_prediction_nearby"] == 1 and counts["n_missed_without_prediction"] == 0
    second = result.per_component[1]
    assert second["detected"] is False and second["prediction_nearby"] is True
    assert second["dice"] == 0.0 and math.isfinite(second["hd95"])


def test_default_worst_distance_is_the_image_diagonal_and_the_mean_stays_finite():
    reference = sphere_mask((44, 20, 20), [Sphere((10, 10, 10), 4.0), Sphere((32, 10, 10), 5.0)])
    prediction = reference.copy()
    prediction[22:] = False
    spacing = (2.0, 1.0, 0.5)
    result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji")
    diagonal = math.sqrt((44 * 2.0) ** 2 + (20 * 1.0) ** 2 + (20 * 0.5) ** 2)
    for metric in ("hd95", "hd", "assd"):
        assert result.per_component[1][metric] == pytest.approx(diagonal)
        assert result.mean[metric] == pytest.approx(diagonal / 2)  # first sphere is perfect
    assert result.settings["distance_worst_mm"] == pytest.approx(diagonal)
    assert result.settings["distance_worst_rule"] == "image diagonal"
    summary = result.summary()
    keys = list(summary)
    for metric in ("hd95", "hd", "assd"):
        assert summary[f"cc_{metric}_n_missed"] == 1
        assert keys.index(f"cc_{metric}_n_missed") == keys.index(f"cc_{metric}") + 1
    # --distance-worst keeps working
    assert evaluate(reference, prediction, distance_worst=30).mean["hd95"] == pytest.approx(15.0)


# ---------------------------------------------------------------- outputs only after success
@pytest.fixture
def case_files(tmp_path):
    reference = sphere_mask((20, 24, 24), [Sphere((6, 6, 6), 3.0), Sphere((14, 16, 16), 3.0)])
    volume = Volume.from_geometry(reference.astype(np.uint8), (1.0, 1.0, 2.0))
    write_volume(volume, tmp_path / "ref.nii.gz")
    write_volume(volume.with_array(np.roll(reference, 1, axis=2).astype(np.uint8)), tmp_path / "pred.nii.gz")
    return tmp_path


def _evaluate_args(folder, *extra):
    reference, prediction = str(folder / "ref.nii.gz"), str(folder / "pred.nii.gz")
    return ["evaluate", "--reference", reference, "--prediction", prediction, *[str(e) for e in extra]]


def test_a_late_write_failure_leaves_no_outputs_and_one_line(case_files, capsys):
    out = case_files / "out"
    blocker = case_files / "not_a_folder"
    blocker.write_text("a file where a folder is expected")
    args = _evaluate_args(
        case_files,
        "--csv",
        str(out / "components.csv"),
        "--summary-csv",
        str(out / "summary.csv"),
        "--json",
        str(blocker / "results.json"),  # its folder cannot be created: fails late
    )
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
    assert not (out / "components.csv").exists() and not (out / "summary.csv").exists()
    assert not out.exists() or not any(out.iterdir())


def test_a_failure_while_rendering_the_png_leaves_no_outputs(case_files, capsys, monkeypatch):
    import CCMetricsLib.report_png as report_png

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded\nsecond line")

    monkeypatch.setattr(report_png, "render_component_report", broken)
    out = case_files / "out"
    code = main(
        [
            *_evaluate_args(case_files),
            "--csv",
            str(out / "c.csv"),
            "--json",
            str(out / "r.json"),
            "--png",
            str(out / "p.png"),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "renderer exploded" in err
    assert not (out / "c.csv").exists() and not (out / "r.json").exists() and not (out / "p.png").exists()


def test_successful_single_case_writes_every_output(case_files, capsys):
    out = case_files / "out"
    code = main(_evaluate_args(case_files, "--csv", out / "c.csv", "--json", out / "r.json"))
    assert code == 0
    data = json.loads((out / "r.json").read_text())
    assert data["predictions"][0]["counts"]["n_reference_components"] == 2
    assert (out / "c.csv").read_text().count("\n") == 3
    assert [p.name for p in out.iterdir()] and all(not p.name.startswith(".") for p in out.iterdir())


def test_usage_errors_are_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "CCMetricsLib", "evaluate", "--metrics", "nope"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "invalid choice" in run.stderr


def test_lesion_report_writes_all_files_or_none(tmp_path, monkeypatch):
    import CCMetricsLib.lesion_report as lesion_report

    reference = sphere_mask((20, 24, 24), [Sphere((6, 6, 6), 3.0), Sphere((14, 16, 16), 3.0)])
    volume = Volume.from_geometry(reference.astype(np.uint8), (1.0, 1.0, 2.0))
    predictions = {"model": volume.with_array(np.roll(reference, 1, axis=2).astype(np.uint8))}

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(lesion_report, "render_component_report", broken)
    with pytest.raises(RuntimeError):
        lesion_report.write_lesion_report(volume, predictions, tmp_path / "report")
    assert not (tmp_path / "report").exists()
    monkeypatch.undo()
    report = lesion_report.write_lesion_report(volume, predictions, tmp_path / "report")
    assert all(path.exists() for path in report.paths.values())
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(
        p.name for p in report.paths.values()
    )
