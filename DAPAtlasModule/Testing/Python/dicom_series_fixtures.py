"""A synthetic DICOM CT series written with pydicom, for the DICOM input and DICOM SEG tests."""

from __future__ import annotations

import numpy as np


def write_ct_series(volume, folder):
    """A CT series written slice by slice with pydicom (axial, LPS-aligned grids only)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    matrix = volume.ijk_to_ras
    spacing = volume.spacing_mm
    row_lps = matrix[:3, 0] / spacing[0] * np.array([-1, -1, 1])
    col_lps = matrix[:3, 1] / spacing[1] * np.array([-1, -1, 1])
    for k in range(volume.array.shape[0]):
        position = (matrix @ np.array([0, 0, k, 1.0]))[:3] * np.array([-1, -1, 1])
        meta = FileMetaDataset()
        uid = generate_uid()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^DAP", "P1", "", "M"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = (
            "20260101",
            "120000",
            "",
            "",
        )
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 3, k + 1
        ds.Modality, ds.Manufacturer, ds.PositionReferenceIndicator = "CT", "test", ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in (*row_lps, *col_lps)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = volume.array.shape[1], volume.array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(volume.array[k].astype(np.int16)).tobytes()
        ds.save_as(folder / f"slice_{k:04d}.dcm", enforce_file_format=True)
    return folder
