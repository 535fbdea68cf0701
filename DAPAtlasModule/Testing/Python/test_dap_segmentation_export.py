"""Outputs Slicer and PACS understand: .seg.nrrd segmentations, DICOM SEG, structure subsets."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from dicom_series_fixtures import write_ct_series
from postprocess_cases import phantom

from AnatomyCommonLib.image_io import read_volume, write_volume
from DAPAtlasLib.__main__ import main
from DAPAtlasLib.exceptions import UnknownStructureError
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.structure_selection import resolve_structures

# SNOMED-CT codes written out by hand from the reference mapping (TotalSegmentator's table),
# independent of the project's label table: (label id, segment name, type code, modifier code).
LIVER = (13, "Liver", "10200004", None)
KIDNEY_LEFT = (15, "Kidney Left", "64033007", "7771000")
KIDNEY_RIGHT = (16, "Kidney Right", "64033007", "24028007")
ANATOMICAL_STRUCTURE = "123037004"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    p = phantom("LPS", "M")
    labels = write_volume(p.labels, folder / "labels.nii.gz")
    # the step the CLI runs below; its output (not the export) is the reference for voxel counts
    expected = postprocess(p.labels, steps=["cheeks"]).labels.array
    return {"phantom": p, "labels": labels, "folder": folder, "expected": expected}


def _tag(segment, name):
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(name, value) else None


def _load_segmentation(path, scene):
    import slicer

    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node), "slicer-core could not read the file as a segmentation"
    return node.GetSegmentation()


@pytest.mark.mrml
def test_seg_nrrd_loads_in_slicer_as_a_segmentation_with_names_colours_and_snomed(case, tmp_path, mrml_scene):
    from vtk.util import numpy_support

    out = tmp_path / "out.seg.nrrd"
    assert main(["postprocess", str(case["labels"]), str(out), "--steps", "cheeks"]) == 0
    segmentation = _load_segmentation(out, mrml_scene)
    truth = case["expected"]
    present = [int(v) for v in np.unique(truth) if v]
    assert segmentation.GetNumberOfSegments() == len(present)
    by_name = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        by_name[segment.GetName()] = segment
    for label, name, type_code, modifier in (LIVER, KIDNEY_LEFT, KIDNEY_RIGHT):
        segment = by_name[name]
        assert segment.GetLabelValue() == label
        entry = _tag(segment, segment.GetTerminologyEntryTagName())
        parts = entry.split("~")
        assert parts[1].split("^")[1] == ANATOMICAL_STRUCTURE
        assert parts[2].split("^")[:2] == ["SCT", type_code]
        assert (parts[3].split("^")[1] or None) == modifier
        image = segment.GetRepresentation("Binary labelmap")
        values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
        assert int((values == label).sum()) == int((truth == label).sum())
        colour = segment.GetColor()
        assert all(0.0 <= c <= 1.0 for c in colour) and max(colour) > 0
    colours = {tuple(round(c, 4) for c in by_name[n].GetColor()) for n in by_name}
    assert len(colours) == len(by_name)  # every segment has its own colour


def test_seg_nrrd_header_has_the_fields_slicer_writes(case, tmp_path):
    out = tmp_path / "liver.seg.nrrd"
    assert main(["postprocess", str(case["labels"]), str(out), "--steps", "cheeks",
                 "--structures", "liver", "kidney_left"]) == 0  # fmt: skip
    header = out.read_bytes().split(b"\n\n", 1)[0].decode()
    assert "Segmentation_MasterRepresentation:=Binary labelmap" in header
    for field in ("ID", "Name", "Color", "LabelValue", "Layer", "Extent", "Tags"):
        assert f"Segment0_{field}:=" in header and f"Segment1_{field}:=" in header
    assert "Segment2_" not in header
    assert "Segment0_Name:=Liver" in header and "SCT^10200004^Liver" in header
    # the extent is the liver's bounding box in i j k, computed here by hand
    k, j, i = np.nonzero(case["expected"] == 13)
    extent = f"Segment0_Extent:={i.min()} {i.max()} {j.min()} {j.max()} {k.min()} {k.max()}"
    assert extent in header
    written = read_volume(out)
    assert set(np.unique(written.array)) == {0, 13, 15}


def test_unknown_structure_names_are_refused_with_close_matches():
    # ids from the released label CSV
    assert resolve_structures(["liver", "Kidney_Left", "spleen,stomach"]) == [7, 13, 15, 26]
    assert set(range(67, 91)) <= set(resolve_structures(["ribs"]))  # a system: the 24 ribs (and more)
    with pytest.raises(UnknownStructureError, match="kidney left"):
        resolve_structures(["liver", "kidny_left"])


def test_stats_with_structures_lists_only_those(case, tmp_path):
    out = tmp_path / "stats.csv"
    assert main(["stats", str(case["labels"]), "--csv", str(out), "--structures", "liver", "spleen"]) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] for row in rows] == ["13", "26"]
    assert int(rows[0]["voxel_count"]) == int((case["phantom"].labels.array == 13).sum())  # stats: no rules


def test_an_unknown_structure_on_the_command_line_fails_before_writing(case, tmp_path, capsys):
    out = tmp_path / "x.nii.gz"
    code = main(["postprocess", str(case["labels"]), str(out), "--structures", "livr"])
    assert code == 2 and not out.exists()
    assert "liver" in capsys.readouterr().err


# ---------------------------------------------------------------------------- DICOM SEG
def test_dicom_seg_reads_back_with_codes_names_and_voxels(case, tmp_path):
    highdicom = pytest.importorskip("highdicom")
    import pydicom

    p = case["phantom"]
    series = write_ct_series(p.ct, tmp_path / "ct_series")
    assert read_volume(series).same_grid_as(p.labels)
    out = tmp_path / "seg.dcm"
    code = main(["postprocess", str(case["labels"]), str(out), "--ct", str(series), "--steps", "cheeks",
                 "--structures", "liver", "kidney_left", "kidney_right"])  # fmt: skip
    assert code == 0
    seg = highdicom.seg.segread(out)
    assert seg.Modality == "SEG"
    by_label = {}
    for number in seg.get_segment_numbers():
        description = seg.get_segment_description(number)
        by_label[description.segment_label] = (number, description)
    assert set(by_label) == {"Liver", "Kidney Left", "Kidney Right"}
    raw = pydicom.dcmread(out)
    sources = sorted((pydicom.dcmread(f) for f in series.iterdir()), key=lambda d: d.ImagePositionPatient[2])
    truth = case["expected"]
    # slice k of the label map is the source with the k-th position along k (LPS grid: +S)
    uids = [d.SOPInstanceUID for d in sources]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True, relabel=False)
    for label, name, type_code, modifier in (LIVER, KIDNEY_LEFT, KIDNEY_RIGHT):
        number, description = by_label[name]
        assert description.segmented_property_category.value == ANATOMICAL_STRUCTURE
        assert description.segmented_property_type.value == type_code
        assert description.segmented_property_type.scheme_designator == "SCT"
        item = raw.SegmentSequence[number - 1].SegmentedPropertyTypeCodeSequence[0]
        found = (
            item.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue
            if "SegmentedPropertyTypeModifierCodeSequence" in item
            else None
        )
        assert found == modifier
        assert np.array_equal(pixels == number, truth == label)


def test_dicom_seg_output_needs_a_dicom_input(case, tmp_path, capsys):
    out = tmp_path / "seg.dcm"
    code = main(["postprocess", str(case["labels"]), str(out), "--steps", "cheeks"])
    assert code == 2 and not out.exists()
    assert "DICOM series" in capsys.readouterr().err
