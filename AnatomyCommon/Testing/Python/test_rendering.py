"""Orthogonal-view PNG overviews: radiological display orientation whatever the voxel axis order."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib.errors import GeometryMismatchError, OutputExistsError
from AnatomyCommonLib.rendering import (
    CANONICAL_AXES,
    render_orthogonal_views,
    render_orthogonal_views_arrays,
    reorient_to_ras_axes,
)
from AnatomyCommonLib.volume import Volume

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LETTERS = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}


def direction_of(code: str) -> np.ndarray:
    """Columns = RAS unit vectors of i, j, k; each letter names where that index grows towards."""
    direction = np.zeros((3, 3))
    for column, letter in enumerate(code):
        axis, sign = LETTERS[letter]
        direction[axis, column] = sign
    return direction


def tilted(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]
    )


def marker_volume(direction: np.ndarray, spacing=(2.0, 2.0, 2.0), marker_ras=(20.0, 15.0, 10.0)) -> Volume:
    """A 60 mm cube centred on RAS (0, 0, 0), -1000 HU, with a bright 5 mm ball at ``marker_ras``."""
    spacing = np.asarray(spacing, dtype=float)
    shape_ijk = np.round(60.0 / spacing).astype(int)
    origin = -direction @ (spacing * (shape_ijk - 1) / 2)
    volume = Volume.from_geometry(np.zeros(shape_ijk[::-1], dtype=np.int16), spacing, origin, direction)
    ras = volume.kji_to_ras(np.indices(volume.shape).reshape(3, -1).T)
    inside = np.linalg.norm(ras - np.asarray(marker_ras), axis=1) < 5.0
    array = np.full(volume.shape, -1000, dtype=np.int16)
    array.reshape(-1)[inside] = 1000
    return volume.with_array(array)


@pytest.fixture(scope="module")
def phantoms():
    from AnatomyCommonLib.anatomy.phantom import make_phantom

    return {o: make_phantom("tiny", orientation=o, n_lesions=3) for o in ("RAS", "LPS", "SRA")}


def bright_pixels(image: np.ndarray) -> np.ndarray:
    return np.argwhere(image[:, :, 0] > 0.9)


@pytest.mark.parametrize("code", ["RAS", "LPS", "LAI", "SRA", "PIR", "tilted"])
def test_views_show_right_on_the_left_anterior_and_superior_up_for_any_axis_order(code):
    direction = tilted(8.0) if code == "tilted" else direction_of(code)
    volume = marker_volume(direction)
    images = render_orthogonal_views_arrays(volume, center_ras=(20.0, 15.0, 10.0), window_hu=(200, 0))
    for view in ("axial", "coronal", "sagittal"):
        rows, cols = images[view].shape[:2]
        marker = bright_pixels(images[view])
        assert len(marker) > 0, f"{view}: the marker is not in the slice"
        row, col = marker.mean(axis=0)
        # the marker is right, anterior and superior of the centre
        assert row < rows / 2, f"{view}: anterior/superior must be up"
        assert col < cols / 2, (
            f"{view}: patient right (axial, coronal) / anterior (sagittal) must be on the left"
        )


def test_pixel_sizes_follow_the_spacing_of_anisotropic_volumes():
    volume = marker_volume(direction_of("LPS"), spacing=(0.5, 1.0, 3.0))
    images = render_orthogonal_views_arrays(volume)
    assert images["pixel_mm"]["axial"] == pytest.approx((1.0, 0.5))  # rows: A-P, columns: R-L
    assert images["pixel_mm"]["coronal"] == pytest.approx((3.0, 0.5))
    assert images["pixel_mm"]["sagittal"] == pytest.approx((3.0, 1.0))
    assert images["axial"].shape[:2] == (60, 120)
    assert images["coronal"].shape[:2] == (20, 120)


def test_reorient_to_ras_axes_indexes_superior_anterior_right():
    assert CANONICAL_AXES == ("superior", "anterior", "right")
    for code in ("LPS", "SRA", "AIL"):
        volume = marker_volume(direction_of(code), spacing=(1.5, 2.0, 2.5))
        array, spacing = reorient_to_ras_axes(volume)
        reference, ref_spacing = reorient_to_ras_axes(marker_volume(np.eye(3), spacing=spacing[::-1]))
        assert spacing == pytest.approx(ref_spacing)
        assert np.array_equal(array, reference)
        assert np.shares_memory(array, volume.array)  # a view, no copy


def test_axial_view_of_an_lps_phantom_equals_the_axial_view_of_the_ras_phantom(phantoms):
    from AnatomyCommonLib.anatomy.label_schema import default_colors_rgb

    colors = default_colors_rgb()
    views = {
        o: render_orthogonal_views_arrays(p.ct, p.labels, colors, extra_overlays=[(p.lesions, (255, 255, 0))])
        for o, p in phantoms.items()
    }
    for view in ("axial", "coronal", "sagittal"):
        assert np.array_equal(views["LPS"][view], views["RAS"][view]), view
        assert np.array_equal(views["SRA"][view], views["RAS"][view]), view
    assert views["LPS"]["index_sar"] == views["RAS"]["index_sar"]


def test_labels_are_overlaid_in_their_colour(phantoms):
    from AnatomyCommonLib.anatomy.label_schema import label_id

    p = phantoms["RAS"]
    liver = p.labels.kji_to_ras(np.argwhere(p.labels.array == label_id("liver")).mean(axis=0))[0]
    plain = render_orthogonal_views_arrays(p.ct, center_ras=liver)
    red = render_orthogonal_views_arrays(p.ct, p.labels, {label_id("liver"): (255, 0, 0)}, center_ras=liver)
    changed = np.any(plain["axial"] != red["axial"], axis=2)
    assert changed.any()
    difference = red["axial"][changed] - plain["axial"][changed]
    liver_pixels = difference[:, 0] > 0
    assert liver_pixels.mean() > 0.3  # the liver turns red (other labels keep default colours)


def test_png_is_written_with_a_plausible_size(tmp_path, phantoms):
    p = phantoms["LPS"]
    target = render_orthogonal_views(tmp_path / "overview.png", p.ct, p.labels, title="tiny phantom")
    assert target == tmp_path / "overview.png"
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert 20_000 < len(data) < 5_000_000
    import matplotlib.image

    image = matplotlib.image.imread(target)
    assert image.shape[1] > 1000 and 300 < image.shape[0] < image.shape[1]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["overview.png"]  # no temporary file left


def test_existing_file_is_not_overwritten_unless_asked(tmp_path, phantoms):
    p = phantoms["RAS"]
    target = tmp_path / "mine.png"
    target.write_bytes(b"the user's file")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        render_orthogonal_views(target, p.ct, p.labels)
    assert target.read_bytes() == b"the user's file"
    render_orthogonal_views(target, p.ct, p.labels, overwrite=True)
    assert target.read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["mine.png"]


def test_labels_on_another_grid_are_rejected(phantoms):
    p = phantoms["RAS"]
    with pytest.raises(GeometryMismatchError):
        render_orthogonal_views_arrays(p.ct, phantoms["LPS"].labels)


def test_only_png_paths_are_accepted(tmp_path, phantoms):
    with pytest.raises(ValueError, match="png"):
        render_orthogonal_views(tmp_path / "overview.jpg", phantoms["RAS"].ct)
