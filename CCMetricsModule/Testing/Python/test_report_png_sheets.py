"""The component PNG: every model and lesion (paged), FP panels, slice choice, scale, letters."""

import numpy as np
import pytest
from PIL import Image

from AnatomyCommonLib import Volume
from CCMetricsLib import compare
from CCMetricsLib.exceptions import OutputExistsError
from CCMetricsLib.report_png import orientation_letters, render_component_report


def cubes_case(n_lesions, shape=(6, 40, 40 * 4)):
    """``n_lesions`` 2x2x2 cubes on a row grid, 8 voxels apart (ids follow C order)."""
    reference = np.zeros(shape, np.uint8)
    corners = []
    for number in range(n_lesions):
        j, i = 4 + 8 * (number // 19), 4 + 8 * (number % 19)
        reference[2:4, j : j + 2, i : i + 2] = 1
        corners.append((2, j, i))
    return reference, corners


def read_rgb(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def has_colour(rgb, hex_colour, tolerance=40):
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool(np.any(np.all(np.abs(rgb - target) <= tolerance, axis=2)))


def test_every_lesion_and_every_model_is_drawn_on_paged_sheets(tmp_path):
    reference, _ = cubes_case(9, shape=(6, 40, 80))
    predictions = {f"model{n}": reference.copy() for n in range(8)}  # 8 models: two past the 6th
    comparison = compare(reference, predictions)
    report = render_component_report(
        reference, predictions, comparison, tmp_path / "c.png", panels_per_page=4, columns=2, margin_mm=3
    )
    assert [p.name for p in report.pages] == ["c.png", "c_page2.png", "c_page3.png"]  # ceil(9 / 4)
    assert all(p.exists() for p in report.pages)
    lesions = [p for p in report.panels if p.kind == "lesion"]
    assert sorted(p.component_id for p in lesions) == list(range(1, 10))
    assert [len([p for p in report.panels if p.page == n]) for n in (1, 2, 3)] == [4, 4, 1]
    assert report.models == list(predictions)
    assert len(set(report.colors.values())) == 8
    last_model_colour = report.colors["model7"]
    assert has_colour(read_rgb(report.pages[0]), last_model_colour)  # its outline and legend entry


@pytest.mark.slow
def test_more_than_120_lesions_are_all_shown(tmp_path):
    reference, _ = cubes_case(125, shape=(6, 60, 160))
    comparison = compare(reference, {"m": reference})
    report = render_component_report(reference, {"m": reference}, comparison, tmp_path / "c.png", margin_mm=2)
    assert len([p for p in report.panels if p.kind == "lesion"]) == 125
    assert len(report.pages) == 5  # 30 panels a page


def test_false_positive_components_get_their_own_panels(tmp_path):
    reference, _ = cubes_case(2, shape=(6, 40, 40))
    prediction = reference.copy()
    prediction[1:4, 20:23, 20:23] = 1  # touches no reference voxel: an FP component
    prediction[0, 30, 5] = 1  # a second one
    comparison = compare(reference, {"m": prediction})
    report = render_component_report(
        reference, {"m": prediction}, comparison, tmp_path / "c.png", margin_mm=3
    )
    fps = [p for p in report.panels if p.kind == "false_positive"]
    assert len(fps) == comparison["m"].counts["n_false_positive_components"] == 2
    assert all(p.prediction == "m" for p in fps)
    by_size = {p.error_voxels for p in fps}
    assert by_size == {9, 1}  # the largest cross-section of each: 3x3 and the single voxel


def test_the_panel_shows_the_slice_with_the_largest_error_not_the_centre(tmp_path):
    reference = np.zeros((21, 30, 30), np.uint8)
    reference[2:19, 10:20, 10:20] = 1  # a lesion over slices 2..18, centre 10
    prediction = reference.copy()
    prediction[15, 10:16, 10:20] = 0  # 60 voxels missed on slice 15
    prediction[5, 12:14, 12:14] = 0  # 4 voxels missed on slice 5
    comparison = compare(reference, {"m": prediction})
    report = render_component_report(
        reference, {"m": prediction}, comparison, tmp_path / "c.png", margin_mm=3
    )
    (panel,) = report.panels
    errors = ((reference == 1) & (prediction == 0)).sum(axis=(1, 2))  # independent: missed per slice
    assert panel.slice_axis == "k" and panel.slice_index == int(np.argmax(errors)) == 15
    assert panel.error_voxels == 60


def test_orientation_letters_and_scale_bar_follow_the_geometry(tmp_path):
    # identity IJK->RAS: radiological view, patient right on the image left, anterior up
    assert orientation_letters(np.eye(4), (1, -1), (2, -1)) == {
        "left": "R",
        "right": "L",
        "top": "A",
        "bottom": "P",
    }
    # array order kept (i grows to the right of the image, j downwards): i points R, j P on identity
    assert orientation_letters(np.eye(4), (1, 1), (2, 1)) == {
        "left": "L",
        "right": "R",
        "top": "P",
        "bottom": "A",
    }
    # k along anterior, j along superior: rows follow k
    permuted = np.eye(4)[:, [0, 2, 1, 3]]
    assert orientation_letters(permuted, (0, 1), (2, 1))["bottom"] == "A"
    reference = np.zeros((5, 40, 40), np.uint8)
    reference[2, 18:22, 18:22] = 1
    # LPS-stored scan (i runs to patient left, j posterior): RAS direction diag(-1, -1, 1)
    volume = Volume.from_geometry(
        reference, spacing_mm=(0.5, 0.5, 2.0), direction_ras=np.diag([-1.0, -1.0, 1.0])
    )
    comparison = compare(volume, {"m": volume})
    report = render_component_report(volume, {"m": volume}, comparison, tmp_path / "c.png", margin_mm=5)
    (panel,) = report.panels
    assert panel.orientation == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert panel.slice_axis == "k" and panel.slice_index == 2
    width_mm = 40 * 0.5  # window: 4 voxels + 10 each side, clipped to 40 voxels at 0.5 mm
    assert 0 < panel.scale_bar_mm <= 0.3 * width_mm
    assert panel.scale_bar_mm in (1, 2, 5)


def test_an_empty_reference_gets_a_page_that_says_so_and_fp_panels(tmp_path):
    reference = np.zeros((5, 20, 20), np.uint8)
    prediction = reference.copy()
    prediction[2, 5:8, 5:8] = 1
    comparison = compare(reference, {"m": prediction})
    report = render_component_report(reference, {"m": prediction}, comparison, tmp_path / "c.png")
    assert report.empty_reference
    assert len(report.pages) == 2 and all(p.exists() for p in report.pages)
    assert [p.page for p in report.panels] == [2] and report.panels[0].kind == "false_positive"
    first = read_rgb(report.pages[0])
    assert np.count_nonzero(first.sum(axis=2) > 600) > 200  # white text on black, not a blank page
    nothing = render_component_report(
        reference, {"m": reference}, compare(reference, {"m": reference}), tmp_path / "e.png"
    )
    assert len(nothing.pages) == 1 and nothing.pages[0].exists() and nothing.panels == []


def test_existing_sheets_are_not_overwritten(tmp_path):
    reference, _ = cubes_case(3, shape=(6, 20, 40))
    comparison = compare(reference, {"m": reference})
    (tmp_path / "c_page2.png").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match=r"c_page2\.png"):
        render_component_report(
            reference, {"m": reference}, comparison, tmp_path / "c.png", panels_per_page=2
        )
    assert (tmp_path / "c_page2.png").read_bytes() == b"mine" and not (tmp_path / "c.png").exists()


def test_scores_are_white_in_a_frame_of_the_model_colour(tmp_path, monkeypatch):
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    drawn = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        drawn.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    reference, _ = cubes_case(3, shape=(6, 40, 60))
    prediction = reference.copy()
    prediction[prediction > 0] = 1
    predictions = {"first": prediction, "second": reference}
    comparison = compare(reference, predictions)
    report = render_component_report(reference, predictions, comparison, tmp_path / "c.png", margin_mm=2)
    scores = [
        text
        for figure in drawn
        for axes in figure.axes
        for text in axes.texts
        if text.get_text().startswith(("first:", "second:"))
    ]
    assert scores
    assert {to_hex(text.get_color()) for text in scores} == {"#ffffff"}
    for text in scores:
        model = text.get_text().split(":")[0]
        assert to_hex(text.get_bbox_patch().get_edgecolor()) == to_hex(report.colors[model])
