"""Image IO keeps geometry on round trips and rejects bad input with typed, clear errors."""

import numpy as np
import pytest
import SimpleITK as sitk

from AnatomyCommonLib.errors import (
    ImageDimensionError,
    InputNotFoundError,
    NonFiniteValuesError,
    OutputExistsError,
    UnsupportedFormatError,
)
from AnatomyCommonLib.image_io import read_labelmap, read_volume, write_volume
from AnatomyCommonLib.volume import Volume


def oblique_volume(dtype=np.int16) -> Volume:
    rng = np.random.default_rng(0)
    angle = np.deg2rad(15)
    direction = np.array(
        [[np.cos(angle), 0, np.sin(angle)], [0, -1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    )  # a rotation about A combined with a flipped j axis: neither RAS nor LPS
    array = rng.integers(-1000, 1500, size=(7, 9, 11)).astype(dtype)
    return Volume.from_geometry(array, (0.8, 0.9, 2.0), (-120.5, 33.25, -700.0), direction)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_voxels_and_geometry_with_a_non_identity_direction(tmp_path, suffix):
    volume = oblique_volume()
    path = write_volume(volume, tmp_path / f"ct{suffix}")
    back = read_volume(path)
    assert np.array_equal(back.array, volume.array)
    assert back.array.dtype == volume.array.dtype
    assert np.allclose(back.ijk_to_ras, volume.ijk_to_ras, atol=1e-4)


def test_written_nifti_is_in_lps_for_itk_readers(tmp_path):
    """ITK tools read the same physical position for a voxel as we meant in RAS."""
    volume = oblique_volume()
    path = write_volume(volume, tmp_path / "ct.nii.gz")
    image = sitk.ReadImage(str(path))
    lps = np.array(image.TransformIndexToPhysicalPoint((3, 4, 5)))  # (i, j, k)
    ras = volume.kji_to_ras([[5, 4, 3]])[0]
    assert np.allclose(lps, ras * np.array([-1, -1, 1]), atol=1e-4)


def test_missing_file_raises_input_not_found(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such file"):
        read_volume(tmp_path / "absent.nii.gz")


def test_unsupported_suffix_lists_supported_formats(tmp_path):
    path = tmp_path / "image.jpg"
    path.write_bytes(b"not an image")
    with pytest.raises(UnsupportedFormatError, match=r"\.nii\.gz"):
        read_volume(path)


def test_corrupt_file_raises_unsupported_format(tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UnsupportedFormatError, match="could not be read"):
        read_volume(path)


def test_2d_image_is_rejected_where_3d_is_required(tmp_path):
    path = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 9), np.int16)), str(path))
    with pytest.raises(ImageDimensionError, match="2D slice"):
        read_volume(path)
    single = read_volume(path, require_3d=False)
    assert single.shape == (1, 8, 9)


def test_nan_values_are_rejected_unless_allowed(tmp_path):
    data = np.zeros((3, 4, 5), np.float32)
    data[1, 2, 3] = np.inf
    path = write_volume(Volume(data), tmp_path / "nan.nrrd")  # ITK NIfTI IO zeroes inf
    with pytest.raises(NonFiniteValuesError, match="infinite"):
        read_volume(path)
    assert np.isinf(read_volume(path, allow_nonfinite=True).array).sum() == 1


def test_existing_output_is_not_overwritten_unless_asked(tmp_path):
    path = tmp_path / "ct.nii.gz"
    write_volume(oblique_volume(), path)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        write_volume(Volume(np.ones((2, 2, 2), np.int16)), path)
    assert path.read_bytes() == before
    write_volume(Volume(np.ones((2, 2, 2), np.int16)), path, overwrite=True)
    assert read_volume(path).shape == (2, 2, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["ct.nii.gz"]  # no temporary files left


def test_labelmap_reader_rejects_a_ct_passed_by_mistake(tmp_path):
    path = write_volume(Volume(np.full((2, 3, 4), 0.5, np.float32)), tmp_path / "ct.nii.gz")
    with pytest.raises(UnsupportedFormatError, match="not a label map"):
        read_labelmap(path)


def test_dicom_series_reads_geometry_and_patient_sex(tmp_path):
    volume = Volume.from_geometry(
        (np.arange(4 * 6 * 5).reshape(4, 6, 5) % 200).astype(np.int16),
        (0.7, 0.7, 2.5),
        (10, 20, -30),
        np.diag([-1.0, -1.0, 1.0]),  # DICOM orientation 1\\0\\0\\0\\1\\0 is LPS-aligned
    )
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing_mm)
    image.SetOrigin((-10.0, -20.0, -30.0))  # RAS (10, 20, -30) in LPS
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(volume.shape[0]):
        slice_image = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in {
            "0010|0040": "F",
            "0008|0060": "CT",
            "0020|000d": "1.2.3",
            "0020|000e": "1.2.3.4",
            "0020|0032": "\\".join(str(v) for v in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(k + 1),
            "0028|0030": "0.7\\0.7",
            "0018|0050": "2.5",
        }.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(slice_image)
    back = read_volume(tmp_path)
    assert back.metadata["PatientSex"] == "F"
    assert back.shape == volume.shape
    assert np.array_equal(back.array, volume.array)
    assert np.allclose(back.ijk_to_ras, volume.ijk_to_ras, atol=1e-3)


def test_folder_without_dicom_is_rejected(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="without a DICOM series"):
        read_volume(tmp_path)
