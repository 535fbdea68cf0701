"""Axial slices in display orientation for any voxel orientation, and pixel <-> RAS."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.phantom import orientation_to_direction
from AnatomyCommonLib.volume import Volume
from LIMISLib.exceptions import GeometryMismatchError, InvalidPromptError
from LIMISLib.slice_geometry import (
    AxialSliceGeometry,
    box_around_mask,
    box_pixel_slices,
    clip_box,
    move_box,
    resize_box,
)

ORIENTATIONS = ["RAS", "LPS", "LAI", "SRA", "PIR", "ASL"]


def world_volume(orientation: str) -> Volume:
    """The same physical 8 x 6 x 5 mm^3 block of values in any voxel orientation.

    The value of a voxel encodes its RAS centre: 10000 * (x index) + 100 * (y index) + (z index),
    with x, y, z counted from the right, posterior, inferior corner (1 mm voxels).
    """
    direction = orientation_to_direction(orientation)
    extent_ras = np.array([8, 6, 5])  # along R, A, S
    shape_ijk = np.abs(direction.T) @ extent_ras
    origin = np.zeros(3)
    for column in range(3):
        axis = int(np.argmax(np.abs(direction[:, column])))
        if direction[axis, column] < 0:
            origin[axis] = extent_ras[axis] - 1
    volume = Volume.from_geometry(
        np.zeros(tuple(int(n) for n in shape_ijk[::-1])), (1, 1, 1), origin, direction
    )
    kji = np.argwhere(np.ones(volume.shape, bool))
    ras = np.rint(volume.kji_to_ras(kji)).astype(int)
    volume.array[tuple(kji.T)] = 10000 * ras[:, 0] + 100 * ras[:, 1] + ras[:, 2]
    return volume


def test_display_rows_run_anterior_to_posterior_and_columns_patient_right_to_left():
    volume = world_volume("RAS")
    geometry = AxialSliceGeometry.from_volume(volume)
    image = geometry.extract(volume.array, 2)
    assert image.shape == (6, 8)
    x = image // 10000
    y = (image // 100) % 100
    assert np.all(image % 100 == 2)  # slice 2 = z index 2
    assert list(x[0]) == [7, 6, 5, 4, 3, 2, 1, 0]  # column 0 = patient right (largest x)
    assert list(y[:, 0]) == [5, 4, 3, 2, 1, 0]  # row 0 = most anterior


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_every_orientation_shows_the_same_slices(orientation):
    reference = world_volume("RAS")
    volume = world_volume(orientation)
    expected = AxialSliceGeometry.from_volume(reference)
    geometry = AxialSliceGeometry.from_volume(volume)
    assert geometry.n_slices == 5 and geometry.image_shape == (6, 8)
    for z in range(5):
        k = geometry.slice_index_of_ras([0.0, 0.0, z])
        assert np.array_equal(geometry.extract(volume.array, k), expected.extract(reference.array, z))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_pixels_map_to_the_ras_of_their_voxel_and_back(orientation):
    volume = world_volume(orientation)
    geometry = AxialSliceGeometry.from_volume(volume)
    k = geometry.slice_index_of_ras([0.0, 0.0, 3.0])
    image = geometry.extract(volume.array, k)
    rng = np.random.default_rng(0)
    for _ in range(10):
        column, row = rng.integers(0, 8), rng.integers(0, 6)
        ras = geometry.pixel_to_ras([(column + 0.5, row + 0.5)], k)[0]
        value = image[row, column]
        assert np.allclose(ras, [value // 10000, (value // 100) % 100, value % 100])
        pixels, slice_position = geometry.ras_to_pixel(ras)
        assert np.allclose(pixels[0], (column + 0.5, row + 0.5)) and slice_position[0] == pytest.approx(k)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_up_is_superior_and_insert_is_the_inverse_of_extract(orientation):
    volume = world_volume(orientation)
    geometry = AxialSliceGeometry.from_volume(volume)
    k = geometry.slice_index_of_ras([0.0, 0.0, 2.0])
    up = geometry.neighbour(k, "up")
    assert geometry.pixel_to_ras([(0.5, 0.5)], up)[0, 2] == pytest.approx(3.0)
    array = np.zeros(volume.shape, np.int32)
    image = np.arange(48).reshape(6, 8)
    geometry.insert(array, k, image)
    assert np.array_equal(geometry.extract(array, k), image)
    assert np.count_nonzero(array) == 47
    block = np.zeros(volume.shape, np.int32)
    block[geometry.slice_region_kji(k)] = geometry.slice_block(image)
    assert np.array_equal(block, array)
    assert np.allclose(np.linalg.det(geometry.display_axes_ras()), 1.0)


def test_the_first_and_last_slices_have_no_neighbour_beyond_and_bad_slices_are_refused():
    geometry = AxialSliceGeometry.from_volume(world_volume("LPS"))
    top = geometry.slice_index_of_ras([0, 0, 4.0])
    assert geometry.neighbour(top, "up") is None
    with pytest.raises(InvalidPromptError):
        geometry.require_slice(99)


def test_a_volume_oblique_by_45_degrees_is_refused_with_a_hint():
    c = np.cos(np.pi / 4)
    direction = np.array([[c, 0, c], [0, 1, 0], [-c, 0, c]])
    with pytest.raises(GeometryMismatchError, match="resample"):
        AxialSliceGeometry.from_volume(Volume.from_geometry(np.zeros((4, 4, 4)), direction_ras=direction))


def test_box_helpers_clip_move_resize_and_wrap_masks():
    shape = (20, 30)
    assert clip_box((-5, 2, 40, 10), shape) == (0.0, 2.0, 30.0, 10.0)
    assert move_box((2, 2, 12, 12), -5, 0, shape) == (0.0, 2.0, 10.0, 12.0)
    assert resize_box((10, 10, 20, 14), 2, shape) == (8.0, 8.0, 22.0, 16.0)
    mask = np.zeros(shape, bool)
    mask[4:7, 10:15] = True
    assert box_around_mask(mask) == (10.0, 4.0, 15.0, 7.0)
    assert box_around_mask(mask, 2) == (8.0, 2.0, 17.0, 9.0)
    assert box_pixel_slices((10.2, 4.0, 14.5, 6.9), shape) == (slice(4, 7), slice(10, 15))
    assert box_around_mask(np.zeros(shape, bool)) is None
    with pytest.raises(InvalidPromptError):
        clip_box((40, 40, 50, 50), shape)
