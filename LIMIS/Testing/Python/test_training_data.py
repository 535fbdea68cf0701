"""prepare-data turns DAP Atlas, TotalSegmentator and WORD cases into the paper's 2D training slices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.errors import OutputExistsError
from AnatomyCommonLib.image_io import write_volume
from LIMISLib.slice_geometry import AxialSliceGeometry
from LIMISLib.slice_preprocessing import (
    center_pad_or_crop,
    normalise_ct_slice,
    resample_slices,
    to_display_axial,
)
from LIMISLib.training_data import (
    PrepareSettings,
    SliceDataset,
    discover_cases,
    prepare_data,
    split_cases,
)

#: WORD's label ids, written out independently of the library's table.
WORD_IDS = {"liver": 1, "spleen": 2, "kidney left": 3, "kidney right": 4, "stomach": 5, "gallbladder": 6,
            "esophagus": 7, "pancreas": 8, "duodenum": 9, "colon": 10, "bladder": 14}  # fmt: skip
TOTALSEG_FILES = {
    "liver": "liver",
    "kidney left": "kidney_left",
    "bladder": "urinary_bladder",
    "spleen": "spleen",
}
SETTINGS = PrepareSettings(spacing_mm=6.0, size=64, write_png=True)
SEEDS = (0, 1, 2)


def _write_layouts(root):
    """The same three phantoms in the three dataset layouts (LPS files, as scanners write them)."""
    for seed in SEEDS:
        phantom = make_phantom("tiny", seed=seed, sex="MF"[seed % 2], orientation=("RAS", "LPS", "LAS")[seed])
        case = f"case{seed}"
        write_volume(phantom.ct, root / "dap" / "images" / f"{case}_0000.nii.gz")
        write_volume(phantom.labels, root / "dap" / "labels" / f"{case}.nii.gz")
        word = np.zeros(phantom.labels.shape, np.uint8)
        for name, value in WORD_IDS.items():
            word[phantom.labels.array == label_id(name)] = value
        write_volume(phantom.ct, root / "word" / "imagesTr" / f"{case}.nii.gz")
        write_volume(phantom.labels.with_array(word), root / "word" / "labelsTr" / f"{case}.nii.gz")
        folder = root / "totalsegmentator" / case
        write_volume(phantom.ct, folder / "ct.nii.gz")
        for name, stem in TOTALSEG_FILES.items():
            mask = (phantom.labels.array == label_id(name)).astype(np.uint8)
            write_volume(phantom.labels.with_array(mask), folder / "segmentations" / f"{stem}.nii.gz")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    _write_layouts(root)
    out = root / "prepared"
    index = prepare_data(
        [("dap", root / "dap"), ("word", root / "word"), ("totalsegmentator", root / "totalsegmentator")],
        out,
        SETTINGS,
    )
    return root, out, index


def test_every_layout_is_discovered(prepared):
    root, _, _ = prepared
    for layout in ("dap", "word", "totalsegmentator"):
        cases = discover_cases(layout, root / layout)
        assert [c.case_id for c in cases] == ["case0", "case1", "case2"]


def test_label_names_of_the_three_layouts_map_to_the_same_boxes(prepared):
    _, _, index = prepared
    by_key = {(r["dataset"], r["case"], r["slice"]): r["boxes"] for r in index["records"]}
    compared = 0
    for (dataset, case, k), boxes in by_key.items():
        if dataset != "dap":
            continue
        assert by_key[("word", case, k)] == boxes
        if ("totalsegmentator", case, k) in by_key:
            subset = {n: b for n, b in boxes.items() if n in TOTALSEG_FILES}
            assert by_key[("totalsegmentator", case, k)] == subset
            compared += 1
    assert compared > 20


def test_boxes_are_the_tight_boxes_of_each_present_structure(prepared):
    _, out, index = prepared
    data = SliceDataset.load(out)
    for record in index["records"][::15]:
        labels = data.load_arrays(record)["labels"]
        for name, box in record["boxes"].items():
            rows, columns = np.nonzero(labels == label_id(name))
            assert box == [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
        absent = set(index["structures"]) - set(record["boxes"])
        assert not any((labels == label_id(n)).any() for n in absent)


def test_slices_are_in_display_orientation_whatever_the_file_orientation(prepared):
    _, _, index = prepared
    both = [r for r in index["records"] if {"liver", "spleen", "kidney left"} <= set(r["boxes"])]
    assert {r["case"] for r in both} == {"case0", "case1", "case2"}  # RAS, LPS and LAS files
    for record in both:
        liver, spleen = record["boxes"]["liver"], record["boxes"]["spleen"]
        assert (liver[0] + liver[2]) / 2 < (spleen[0] + spleen[2]) / 2  # patient right on the left
        liver_top, kidney_top = liver[1], record["boxes"]["kidney left"][1]
        assert liver_top < kidney_top  # anterior at the top


def test_label_slices_keep_only_the_requested_structures(prepared):
    _, out, index = prepared
    data = SliceDataset.load(out)
    allowed = {0} | {label_id(name) for name in index["structures"]}
    for record in index["records"][::10]:
        assert set(np.unique(data.load_arrays(record)["labels"]).tolist()) <= allowed


def test_the_same_anatomy_gives_the_same_slices_from_ras_and_lps_files(tmp_path):
    arrays = []
    for orientation in ("RAS", "LPS"):
        phantom = make_phantom("tiny", seed=4, orientation=orientation)
        root = tmp_path / orientation
        write_volume(phantom.ct, root / "images" / "c.nii.gz")
        write_volume(phantom.labels, root / "labels" / "c.nii.gz")
        index = prepare_data([("dap", root)], tmp_path / f"out_{orientation}", SETTINGS)
        data = SliceDataset.load(tmp_path / f"out_{orientation}")
        # both orientations have k towards superior, so the slices are numbered alike
        arrays.append({r["slice"]: data.load_arrays(r) for r in index["records"]})
    assert arrays[0].keys() == arrays[1].keys()
    for k in arrays[0]:
        ras, lps = arrays[0][k], arrays[1][k]
        assert np.array_equal(ras["labels"], lps["labels"])
        assert np.array_equal(ras["image_hu"], lps["image_hu"])


def test_images_are_percentile_clipped_and_z_scored_with_the_foreground():
    rng = np.random.default_rng(0)
    image = np.full((40, 40), -1000.0)
    image[5:35, 5:35] = rng.normal(40, 30, size=(30, 30))
    image[20, 20] = 3000  # an outlier above the 99.5th percentile
    normalised = normalise_ct_slice(image)
    low, high = np.percentile(image, [0.5, 99.5])
    clipped = np.clip(image, low, high)
    body = image > -500
    expected = (clipped - clipped[body].mean()) / clipped[body].std()
    assert np.allclose(normalised, expected, atol=1e-4)
    assert abs(normalised[body].mean()) < 1e-4 and abs(normalised[body].std() - 1) < 1e-3


def test_stored_image_is_the_normalised_hu_slice(prepared):
    _, out, index = prepared
    data = SliceDataset.load(out)
    arrays = data.load_arrays(index["records"][7])
    assert np.allclose(arrays["image"], normalise_ct_slice(arrays["image_hu"]), atol=1e-3)
    assert arrays["image"].shape == (64, 64) and arrays["image_hu"].dtype == np.int16


def test_display_axial_slices_match_the_interaction_loop_geometry():
    phantom = make_phantom("tiny", seed=0, orientation="LAS")
    display = to_display_axial(phantom.ct)
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    for k in (20, 60, 100):
        assert np.array_equal(display.array[k], geometry.extract(phantom.ct.array, k))


def test_resampling_to_a_coarser_spacing_halves_the_size_and_pads_centred():
    slices = np.zeros((1, 20, 10), np.int16)
    slices[0, 4:8, 2:4] = 1
    out = resample_slices(slices, (3.0, 3.0), 6.0, 16, labels=True)
    assert out.shape == (1, 16, 16)
    rows, columns = np.nonzero(out[0])
    # 20 x 10 -> 10 x 5, padded by (3, 5) rows and (5, 6) columns; the block 4:8, 2:4 -> 2:4, 1:2.
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (5, 6, 6, 6)
    assert center_pad_or_crop(np.ones((1, 20, 20)), 10, 0).shape == (1, 10, 10)


def test_each_dataset_is_split_80_10_10_by_case_and_reproducibly():
    cases = [f"p{i:02d}" for i in range(20)]
    split = split_cases(cases, seed=3)
    assert sorted(split.values()).count("train") == 16
    assert list(split.values()).count("val") == 2 and list(split.values()).count("test") == 2
    assert split == split_cases(list(reversed(cases)), seed=3)
    assert split != split_cases(cases, seed=4)
    assert set(split_cases(["a", "b"]).values()) == {"train"}


def test_cases_seen_by_scribbleprompt_stay_in_training():
    cases = [f"p{i:02d}" for i in range(10)]
    split = split_cases(cases, seed=0, train_only=cases[:5])
    assert all(split[c] == "train" for c in cases[:5])
    assert {split[c] for c in cases[5:]} >= {"val", "test"}


def test_splits_are_made_per_dataset_and_pooled(prepared):
    _, out, index = prepared
    for dataset in index["datasets"]:
        assert {len(cases) for cases in dataset["cases"].values()} == {1}  # 3 cases: 1 / 1 / 1
    splits = {r["split"] for r in index["records"]}
    assert splits == {"train", "val", "test"}
    assert len(SliceDataset.load(out, "val")) == index["counts"]["val"]
    saved = json.loads((out / "index.json").read_text())
    assert saved["settings"]["spacing_mm"] == 6.0 and saved["structures"][0] == "esophagus"
    assert (out / index["records"][0]["file"]).with_suffix(".png").is_file()


def test_an_existing_output_is_not_overwritten_and_a_failed_run_leaves_nothing(prepared, tmp_path):
    root, out, _ = prepared
    with pytest.raises(OutputExistsError):
        prepare_data([("dap", root / "dap")], out, SETTINGS)

    def interrupt(items, total, desc):
        yield next(iter(items))
        raise KeyboardInterrupt

    target = tmp_path / "never"
    with pytest.raises(KeyboardInterrupt):
        prepare_data([("dap", root / "dap")], target, SETTINGS, progress=interrupt)
    assert not target.exists() and not list(tmp_path.glob(".never*"))
