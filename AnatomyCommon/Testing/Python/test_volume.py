"""Volume geometry: spacing, RAS/LPS conversion, anatomical axes from the direction matrix."""

import numpy as np
import pytest

from AnatomyCommonLib.errors import GeometryMismatchError, ImageDimensionError, NonFiniteValuesError
from AnatomyCommonLib.volume import Volume

LPS_DIRECTION_IN_RAS = np.diag([-1.0, -1.0, 1.0])  # i -> Left, j -> Posterior, k -> Superior


def test_spacing_and_kji_spacing_follow_the_matrix_columns():
    volume = Volume.from_geometry(np.zeros((4, 5, 6)), spacing_mm=(0.8, 0.9, 2.5))
    assert volume.spacing_mm == pytest.approx((0.8, 0.9, 2.5))
    assert volume.spacing_kji_mm == pytest.approx((2.5, 0.9, 0.8))
    assert volume.voxel_volume_ml == pytest.approx(0.8 * 0.9 * 2.5 / 1000)


def test_voxel_to_ras_and_back_are_inverse_for_an_oblique_grid():
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volume = Volume.from_geometry(np.zeros((3, 4, 5)), (0.7, 0.7, 3.0), (10, -20, 30), rotation)
    kji = np.array([[0, 0, 0], [2, 3, 4], [1.5, 0.5, 2.25]])
    assert np.allclose(volume.ras_to_kji(volume.kji_to_ras(kji)), kji)
    # voxel (k=0, j=0, i=1) lies one i-step (0.7 mm along the rotated x axis) from the origin
    assert np.allclose(volume.kji_to_ras([[0, 0, 1]])[0], np.array([10, -20, 30]) + 0.7 * rotation[:, 0])


def test_lps_geometry_is_converted_to_ras():
    volume = Volume.from_lps_geometry(np.zeros((2, 2, 2)), (1, 1, 1), (5.0, 6.0, 7.0), np.eye(3))
    assert volume.origin_ras == pytest.approx((-5.0, -6.0, 7.0))
    assert np.allclose(volume.direction_ras, LPS_DIRECTION_IN_RAS)


@pytest.mark.parametrize(
    ("direction", "left_axis", "left_sign", "superior_axis", "superior_sign"),
    [
        (np.eye(3), 2, -1, 0, 1),  # RAS: i grows to the right, so left is decreasing i
        (LPS_DIRECTION_IN_RAS, 2, 1, 0, 1),  # LPS: i grows to the left
        (np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]), 0, -1, 2, -1),  # k -> Right, i -> Inferior
    ],
)
def test_anatomical_axis_comes_from_the_direction_matrix(
    direction, left_axis, left_sign, superior_axis, superior_sign
):
    volume = Volume.from_geometry(np.zeros((3, 4, 5)), direction_ras=direction)
    left = volume.anatomical_axis("left")
    superior = volume.anatomical_axis("superior")
    assert (left.array_axis, left.sign) == (left_axis, left_sign)
    assert (superior.array_axis, superior.sign) == (superior_axis, superior_sign)
    assert left.alignment == pytest.approx(1.0)


def test_require_same_grid_names_what_differs():
    a = Volume.from_geometry(np.zeros((3, 4, 5)), (1, 1, 1))
    b = Volume.from_geometry(np.zeros((3, 4, 5)), (1, 1, 2))
    with pytest.raises(GeometryMismatchError, match="spacing"):
        a.require_same_grid(b, ("reference", "prediction"))
    with pytest.raises(GeometryMismatchError, match="voxels"):
        a.require_same_grid(Volume(np.zeros((3, 4, 6))), ("reference", "prediction"))
    c = Volume.from_geometry(np.zeros((3, 4, 5)), origin_ras=(0, 0, 5))
    with pytest.raises(GeometryMismatchError, match="origin"):
        a.require_same_grid(c)


def test_with_array_refuses_a_different_shape():
    volume = Volume(np.zeros((3, 4, 5)))
    with pytest.raises(GeometryMismatchError):
        volume.with_array(np.zeros((3, 4, 6)))


def test_validation_rejects_2d_and_nan():
    with pytest.raises(ImageDimensionError, match="3D"):
        Volume(np.zeros((4, 5))).require_3d("CT")
    data = np.zeros((2, 2, 2), np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteValuesError, match="1 NaN"):
        Volume(data).require_finite("CT")


def test_singular_matrix_is_rejected():
    with pytest.raises(GeometryMismatchError, match="singular"):
        Volume(np.zeros((2, 2, 2)), ijk_to_ras=np.zeros((4, 4)))
