"""The synthetic whole-body CT phantom: anatomy in the right place, in every grid orientation."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy import ndimage

from AnatomyCommonLib.anatomy.label_schema import label_id, rib_id, vertebra_id
from AnatomyCommonLib.anatomy.phantom import (
    MATERIAL_HU,
    SIZE_PRESETS,
    Phantom,
    make_phantom,
    orientation_to_direction,
    phantom_grid,
)
from AnatomyCommonLib.volume import Volume

ORIENTATIONS = ("RAS", "LPS", "LAI", "SRA")  # identity, ITK default, flipped axes, permuted axes
VERTEBRAE = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
FULL_26 = np.ones((3, 3, 3), dtype=bool)
LUNG_LEFT = (label_id("lung upper lobe left"), label_id("lung lower lobe left"))
LUNG_RIGHT = (
    label_id("lung upper lobe right"),
    label_id("lung middle lobe right"),
    label_id("lung lower lobe right"),
)


def _oblique_direction() -> np.ndarray:
    a, b = np.deg2rad(20), np.deg2rad(10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


@cache
def phantom(
    orientation: str = "RAS", sex: str = "M", seed: int = 0, n_lesions: int = 0, size: str = "tiny"
) -> Phantom:
    if orientation == "oblique":
        return make_phantom(size, sex=sex, seed=seed, n_lesions=n_lesions, direction_ras=_oblique_direction())
    return make_phantom(size, sex=sex, seed=seed, n_lesions=n_lesions, orientation=orientation)


def mask_of(p: Phantom, *ids: int) -> np.ndarray:
    return np.isin(p.labels.array, ids)


def centroid_ras(volume: Volume, mask: np.ndarray) -> np.ndarray:
    assert mask.any(), "structure missing"
    return volume.kji_to_ras(np.argwhere(mask).mean(axis=0))[0]


def n_components(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, structure=FULL_26)[1])


# ------------------------------------------------------------------ sides


PAIRS = {
    "kidneys": ((label_id("kidney left"),), (label_id("kidney right"),)),
    "lungs": (LUNG_LEFT, LUNG_RIGHT),
    "femurs": ((label_id("femur left"),), (label_id("femur right"),)),
    "eyeballs": ((label_id("eyeball left"),), (label_id("eyeball right"),)),
    "hips": ((label_id("hip left"),), (label_id("hip right"),)),
    "adrenal glands": ((label_id("adrenal gland left"),), (label_id("adrenal gland right"),)),
    "clavicles": ((label_id("clavicle left"),), (label_id("clavicle right"),)),
}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_left_structure_centroid_lies_on_the_patients_left_of_the_right_one(orientation, pair):
    p = phantom(orientation)
    left_ids, right_ids = PAIRS[pair]
    left = centroid_ras(p.labels, mask_of(p, *left_ids))
    right = centroid_ras(p.labels, mask_of(p, *right_ids))
    assert left[0] < -10 < 10 < right[0], (
        f"{pair}: left x={left[0]:.1f}, right x={right[0]:.1f} (RAS, +x = right)"
    )


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_liver_lies_on_the_patients_right_and_spleen_on_the_left(orientation):
    p = phantom(orientation)
    assert centroid_ras(p.labels, mask_of(p, label_id("liver")))[0] > 20
    assert centroid_ras(p.labels, mask_of(p, label_id("spleen")))[0] < -20


# ------------------------------------------------------------------ spine and ribs


@pytest.mark.parametrize("orientation", [*ORIENTATIONS, "oblique"])
def test_vertebrae_c1_to_l5_are_single_components_stacked_from_superior_to_inferior_above_the_sacrum(
    orientation,
):
    p = phantom(orientation)
    heights = []
    for name in VERTEBRAE:
        mask = mask_of(p, vertebra_id(name))
        assert n_components(mask) == 1, f"{name} must be exactly one connected component"
        heights.append(centroid_ras(p.labels, mask)[2])
    sacrum_z = centroid_ras(p.labels, mask_of(p, label_id("sacrum")))[2]
    assert all(upper > lower for upper, lower in zip(heights, [*heights[1:], sacrum_z], strict=True))


@pytest.mark.parametrize("orientation", [*ORIENTATIONS, "oblique"])
def test_neighbouring_vertebrae_never_touch_because_discs_separate_them(orientation):
    p = phantom(orientation)
    assert n_components(mask_of(p, *range(vertebra_id("C1"), vertebra_id("L5") + 1))) == 24


def test_vertebral_heights_grow_from_cervical_to_lumbar():
    p = make_phantom("small", noise_hu=0)
    z_axis = p.labels.anatomical_axis("superior").array_axis
    spacing = p.labels.spacing_kji_mm[z_axis]

    def height(name: str) -> float:
        slices = np.flatnonzero(
            mask_of(p, vertebra_id(name)).any(axis=tuple(a for a in range(3) if a != z_axis))
        )
        return (slices.max() - slices.min() + 1) * spacing

    assert 9 <= height("C4") <= 19
    assert 18 <= height("T6") <= 28
    assert 24 <= height("L3") <= 36


@pytest.mark.parametrize("orientation", [*ORIENTATIONS, "oblique"])
def test_each_rib_is_one_component_whose_medial_end_is_nearest_to_its_own_thoracic_vertebra(orientation):
    p = phantom(orientation)
    labels = p.labels.array
    vertebra_voxels = np.argwhere((labels >= vertebra_id("C1")) & (labels <= vertebra_id("L5")))
    vertebra_ras = p.labels.kji_to_ras(vertebra_voxels)
    vertebra_labels = labels[tuple(vertebra_voxels.T)]
    for k in range(1, 13):
        for side in ("left", "right"):
            mask = labels == rib_id(k, side)
            assert n_components(mask) == 1, f"rib {k} {side} must be one connected component"
            rib_ras = p.labels.kji_to_ras(np.argwhere(mask))
            medial_end = rib_ras[np.argsort(np.abs(rib_ras[:, 0]))[:3]].mean(axis=0)
            nearest = vertebra_labels[np.argmin(np.linalg.norm(vertebra_ras - medial_end, axis=1))]
            assert nearest == vertebra_id(f"T{k}"), f"rib {k} {side} starts next to label {nearest}"
            assert (medial_end[0] < 0) == (side == "left")
    # no two ribs touch: the union of all ribs falls apart into exactly 24 pieces
    assert n_components((labels >= rib_id(1, "left")) & (labels <= rib_id(12, "right"))) == 24


def test_upper_ribs_reach_the_sternum_through_rib_cartilage():
    p = phantom()
    cartilage = mask_of(p, label_id("rib cartilage"))
    sternum = mask_of(p, label_id("sternum"))
    grown = ndimage.binary_dilation(cartilage, structure=FULL_26)
    assert (grown & sternum).any()
    for k in (1, 4, 7):
        assert (grown & mask_of(p, rib_id(k, "left"))).any()


# ------------------------------------------------------------------ intensities


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_mean_hounsfield_units_are_plausible_per_tissue(orientation):
    p = phantom(orientation)
    ct = p.ct.array.astype(float)
    assert ct[mask_of(p, *LUNG_LEFT, *LUNG_RIGHT)].mean() < -700
    assert -150 <= ct[mask_of(p, label_id("fat"))].mean() <= -50
    assert 40 <= ct[mask_of(p, label_id("liver"))].mean() <= 80
    assert ct[p.labels.array == 0].mean() < -900
    for bone in ("femur left", "hip right", "sacrum", "skull", "sternum", "clavicle left", "scapula right"):
        assert ct[mask_of(p, label_id(bone))].mean() > 300, bone
    assert ct[mask_of(p, *range(vertebra_id("C1"), vertebra_id("L5") + 1))].mean() > 300
    assert ct[mask_of(p, *range(rib_id(1, "left"), rib_id(12, "right") + 1))].mean() > 300
    assert ct[mask_of(p, label_id("trachea"))].mean() < -900
    assert ct[mask_of(p, label_id("stomach"))].min() < -900  # an air pocket
    assert 0 <= ct[mask_of(p, label_id("kidney left"))].mean() <= 70
    assert 20 <= ct[mask_of(p, label_id("brain"))].mean() <= 50
    assert -20 <= ct[mask_of(p, label_id("bladder"))].mean() <= 30
    assert ct.dtype == np.float64 and p.ct.array.dtype == np.int16


def test_noise_has_the_requested_standard_deviation_and_zero_noise_gives_the_material_values():
    noisy = phantom()
    clean = make_phantom("tiny", noise_hu=0)
    brain = mask_of(clean, label_id("brain"))
    assert np.all(clean.ct.array[brain] == MATERIAL_HU["brain"])
    assert noisy.ct.array[brain].std() == pytest.approx(15.0, rel=0.1)


# ------------------------------------------------------------------ geometry


@pytest.mark.parametrize("orientation", ["LPS", "LAI", "SRA", "oblique"])
def test_structure_centroids_agree_with_the_ras_phantom_within_a_voxel(orientation):
    reference, other = phantom("RAS"), phantom(orientation)
    voxel_mm = max(other.labels.spacing_mm)
    # structures that lie entirely inside both fields of view (the femurs leave them)
    for structure in (
        "liver",
        "kidney left",
        "heart",
        "vertebra T7",
        "hip right",
        "brain",
        "bladder",
        "rib 5 left",
    ):
        ids = (label_id(structure),)
        a = centroid_ras(reference.labels, mask_of(reference, *ids))
        b = centroid_ras(other.labels, mask_of(other, *ids))
        assert np.linalg.norm(a - b) < voxel_mm, structure


@pytest.mark.parametrize("orientation", ["LPS", "LAI", "SRA", "PIR"])
def test_axis_aligned_orientations_hold_the_same_voxels_after_reorientation(orientation):
    from AnatomyCommonLib.rendering import reorient_to_ras_axes

    reference, other = phantom("RAS", n_lesions=4), phantom(orientation, n_lesions=4)
    for attribute in ("labels", "ct", "lesions"):
        expected = reorient_to_ras_axes(getattr(reference, attribute))[0]
        assert np.array_equal(reorient_to_ras_axes(getattr(other, attribute))[0], expected), attribute


def test_phantom_covers_skull_top_to_mid_thighs_with_the_body_centred_left_to_right():
    p = phantom("LPS")
    body = p.labels.array > 0
    ras = p.labels.kji_to_ras(np.argwhere(body))
    assert ras[:, 2].max() > 990  # the vertex is in the field of view
    assert ras[:, 2].min() < 10  # down to the lowest slice (thighs)
    assert abs(ras[:, 0].mean()) < 3
    lowest = ras[:, 2] < 10
    assert {label_id("femur left"), label_id("femur right")} <= set(
        np.unique(p.labels.array[tuple(np.argwhere(body)[lowest].T)]).tolist()
    )


def test_orientation_code_letters_name_where_the_voxel_indices_grow_towards():
    assert np.array_equal(orientation_to_direction("RAS"), np.eye(3))
    assert np.array_equal(orientation_to_direction("lps"), np.diag([-1.0, -1.0, 1.0]))
    sra = orientation_to_direction("SRA")  # i -> Superior, j -> Right, k -> Anterior
    assert np.array_equal(sra[:, 0], [0, 0, 1])
    assert np.array_equal(sra[:, 1], [1, 0, 0])
    assert np.array_equal(sra[:, 2], [0, 1, 0])


def test_preset_grids_follow_the_orientation_and_the_realistic_one_is_512_by_512():
    realistic = phantom_grid("realistic")
    assert realistic.shape == (510, 512, 512)
    assert realistic.spacing_mm == pytest.approx((0.8, 0.8, 2.0))
    permuted = phantom_grid("realistic", orientation="SRA")  # i runs superior-inferior
    assert permuted.spacing_mm == pytest.approx((2.0, 0.8, 0.8))
    assert permuted.shape == (512, 512, 510)
    assert set(SIZE_PRESETS) == {"tiny", "small", "medium", "realistic"}


def test_custom_shape_and_spacing_override_the_preset():
    p = make_phantom("tiny", shape=(50, 40, 130), spacing_mm=(8.0, 8.0, 8.0), orientation="LPS")
    assert p.ct.shape == (130, 40, 50) and p.labels.shape == p.lesions.shape == p.ct.shape
    assert p.ct.spacing_mm == pytest.approx((8.0, 8.0, 8.0))
    assert np.allclose(p.ct.direction_ras, np.diag([-1.0, -1.0, 1.0]))
    assert p.labels.same_grid_as(p.ct) and p.lesions.same_grid_as(p.ct)


# ------------------------------------------------------------------ determinism and sex


def test_same_seed_gives_identical_arrays_and_another_seed_different_ones():
    a = make_phantom("tiny", seed=5, n_lesions=3)
    b = make_phantom("tiny", seed=5, n_lesions=3)
    c = make_phantom("tiny", seed=6, n_lesions=3)
    for attribute in ("ct", "labels", "lesions"):
        assert np.array_equal(getattr(a, attribute).array, getattr(b, attribute).array)
        assert not np.array_equal(getattr(a, attribute).array, getattr(c, attribute).array)
    assert a.lesion_info == b.lesion_info


ALWAYS_PRESENT = (
    ["unknown tissue", "muscles", "fat", "skin", "autochthon left", "autochthon right", "iliopsoas left"]
    + ["iliopsoas right", "gluteus maximus left", "gluteus maximus right", "sacrum", "spinal canal"]
    + ["rib cartilage", "sternum", "clavicle left", "clavicle right", "scapula left", "scapula right"]
    + [
        f"lung {lobe}"
        for lobe in ("lower lobe left", "upper lobe left", "lower lobe right", "middle lobe right")
    ]
    + [
        "lung upper lobe right",
        "trachea",
        "bronchi",
        "heart",
        "aorta",
        "iliac artery left",
        "iliac artery right",
    ]
    + ["inferior vena cava", "esophagus", "liver", "gallbladder", "spleen", "stomach", "pancreas"]
    + ["kidney left", "kidney right", "adrenal gland left", "adrenal gland right", "small bowel", "colon"]
    + ["rectum", "bladder", "hip left", "hip right", "femur left", "femur right", "skull", "brain"]
    + ["eyeball left", "eyeball right", "thyroid left", "thyroid right", "gonads"]
)


@pytest.mark.parametrize("sex", ["M", "F"])
def test_tiny_phantom_contains_every_listed_structure(sex):
    present = set(phantom(sex=sex).present_labels())
    missing = [name for name in ALWAYS_PRESENT if label_id(name) not in present]
    assert not missing
    assert {vertebra_id(v) for v in VERTEBRAE} <= present
    assert {rib_id(k, s) for k in range(1, 13) for s in ("left", "right")} <= present


def test_male_phantom_has_prostate_and_testes_below_the_pelvis_and_no_female_organs():
    p = phantom(sex="M")
    present = set(p.present_labels())
    assert label_id("prostate") in present
    assert not present & {label_id(n) for n in ("uterus", "uterocervix", "breast left", "breast right")}
    testes_z = centroid_ras(p.labels, mask_of(p, label_id("gonads")))[2]
    hips = p.labels.kji_to_ras(np.argwhere(mask_of(p, label_id("hip left"), label_id("hip right"))))
    assert testes_z < np.percentile(hips[:, 2], 5)
    assert p.sex == "M"


def test_female_phantom_has_uterus_cervix_ovaries_in_the_pelvis_and_breasts_but_no_prostate():
    p = phantom(sex="F")
    present = set(p.present_labels())
    assert {label_id(n) for n in ("uterus", "uterocervix", "breast left", "breast right")} <= present
    assert label_id("prostate") not in present
    ovaries = mask_of(p, label_id("gonads"))
    assert n_components(ovaries) == 2
    ovaries_z = centroid_ras(p.labels, ovaries)[2]
    sacrum_z = centroid_ras(p.labels, mask_of(p, label_id("sacrum")))[2]
    assert abs(ovaries_z - sacrum_z) < 60  # in the pelvis, not below it
    left = centroid_ras(p.labels, mask_of(p, label_id("breast left")))
    right = centroid_ras(p.labels, mask_of(p, label_id("breast right")))
    assert left[0] < 0 < right[0] and min(left[1], right[1]) > 60  # anterior chest


# ------------------------------------------------------------------ lesions


@pytest.mark.parametrize("orientation", ["RAS", "SRA"])
def test_lesions_have_the_requested_count_separate_components_inside_the_body(orientation):
    n = 8
    p = phantom(orientation, n_lesions=n)
    lesions = p.lesions.array
    assert lesions.dtype == np.uint16
    assert sorted(np.unique(lesions).tolist()) == list(range(n + 1))
    assert [info["id"] for info in p.lesion_info] == list(range(1, n + 1))
    assert n_components(lesions > 0) == n  # no two lesions touch
    for info in p.lesion_info:
        mask = lesions == info["id"]
        assert n_components(mask) == 1
        assert np.all(p.labels.array[mask] != 0), "lesion outside the body"
        assert info["host_label"] != 0 and set(info) >= {"id", "center_ras", "radius_mm", "host_label"}
        # at least two empty voxels between lesions: their one-voxel dilations stay disjoint
        others = ndimage.binary_dilation((lesions > 0) & ~mask, structure=FULL_26)
        assert not (ndimage.binary_dilation(mask, structure=FULL_26) & others).any()
    assert p.labels.array[lesions > 0].min() > 0  # labels keep the host anatomy


def test_liver_lesions_are_hypodense_and_lesions_sit_in_varied_hosts():
    p = make_phantom("tiny", n_lesions=20, noise_hu=0, seed=2)
    hosts = {info["host"] for info in p.lesion_info}
    assert len(hosts) >= 3
    for info in p.lesion_info:
        mask = p.lesions.array == info["id"]
        assert np.all(p.ct.array[mask] == info["hu"])
        if info["host"] == "liver":
            assert info["hu"] < MATERIAL_HU["liver"] - 20
    radii = [info["radius_mm"] for info in p.lesion_info]
    assert max(radii) > 2 * min(radii)


@pytest.mark.slow
def test_small_phantom_lesions_are_separate_and_deterministic():
    a = make_phantom("small", n_lesions=12, seed=4)
    b = make_phantom("small", n_lesions=12, seed=4)
    assert np.array_equal(a.lesions.array, b.lesions.array)
    assert n_components(a.lesions.array > 0) == 12
    assert n_components(mask_of(a, label_id("vertebra T12"))) == 1


@pytest.mark.slow
def test_realistic_phantom_has_the_clinical_grid_and_keeps_ribs_separate():
    p = make_phantom("realistic", n_lesions=5)
    assert p.ct.shape == (510, 512, 512)
    labels = p.labels.array
    assert n_components((labels >= rib_id(1, "left")) & (labels <= rib_id(12, "right"))) == 24
    # the body fits the 410 mm field of view left to right (no arms in the phantom)
    assert not (labels[:, :, 0] > 0).any() and not (labels[:, :, -1] > 0).any()


# ------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "huge"}, "Unknown phantom size"),
        ({"orientation": "RAX"}, "letter"),
        ({"orientation": "RRS"}, "same anatomical axis"),
        ({"orientation": "RA"}, "3-letter"),
        ({"sex": "X"}, "sex"),
        ({"spacing_mm": (1.0, -1.0, 1.0)}, "spacing_mm"),
        ({"spacing_mm": (1.0, 1.0)}, "spacing_mm"),
        ({"spacing_mm": "fine"}, "spacing_mm"),
        ({"shape": (10, 0, 10)}, "shape"),
        ({"n_lesions": -1}, "n_lesions"),
        ({"noise_hu": -5}, "noise_hu"),
        ({"seed": -1}, "seed"),
        ({"direction_ras": np.ones((3, 3))}, "orthonormal"),
        ({"direction_ras": np.eye(3), "orientation": "LPS"}, "either"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_phantom(**kwargs)


def test_grids_too_coarse_to_separate_ribs_and_vertebrae_warn():
    with pytest.warns(UserWarning, match="too coarse"):
        make_phantom("tiny", spacing_mm=10.0, n_lesions=0)


@pytest.mark.parametrize("n_lesions", [1, 4])
def test_overview_shows_lesions_in_a_colour_no_label_uses(tmp_path, n_lesions):
    from PIL import Image

    from AnatomyCommonLib.anatomy.phantom.sample_case import write_phantom_case

    def magenta_pixels(folder, lesions):
        phantom = make_phantom("tiny", seed=5, n_lesions=lesions)
        paths = write_phantom_case(phantom, folder)
        rgb = np.asarray(Image.open(paths["overview"]).convert("RGB")).astype(int)
        return int(((rgb[..., 0] > 230) & (rgb[..., 1] < 40) & (rgb[..., 2] > 230)).sum())

    assert magenta_pixels(tmp_path / "none", 0) == 0  # no label, CT grey or text is magenta
    assert magenta_pixels(tmp_path / "some", n_lesions) > 0  # the views pass through a lesion
