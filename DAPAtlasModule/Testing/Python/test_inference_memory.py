"""Memory estimate and CPU/GPU choice before an nnU-Net prediction (pure arithmetic, no model)."""

from __future__ import annotations

import pytest

from DAPAtlasLib.device_selection import (
    GB,
    RUNTIME_OVERHEAD_BYTES,
    estimate_memory,
    patch_activation_elements,
    resampled_shape,
    select_device,
)
from DAPAtlasLib.exceptions import InsufficientMemoryError, MissingDependencyError

#: 100^3 voxels at the model's own 2 mm spacing, 145 classes, one fold, a two-stage network.
CASE = dict(
    shape_kji=(100, 100, 100),
    spacing_kji_mm=(2.0, 2.0, 2.0),
    target_spacing_mm=(2.0, 2.0, 2.0),
    num_classes=145,
    patch_size=(32, 32, 32),
    features_per_stage=(4, 8),
    strides=((1, 1, 1), (2, 2, 2)),
    n_conv_per_stage=2,
    n_folds=1,
    weights_bytes_per_fold=0,
)


def test_patch_activations_count_every_stage_and_the_class_maps():
    # input twice; stage 0: 4 features at 32^3, 6 maps; stage 1: 8 features at 16^3; logits 3x
    expected = 2 * 32**3 + 4 * 32**3 * 6 + 8 * 16**3 * 6 + 3 * 145 * 32**3
    assert patch_activation_elements((32, 32, 32), (4, 8), ((1, 1, 1), (2, 2, 2)), 2, 145) == expected


def test_host_memory_of_a_cpu_run_is_the_largest_phase_plus_the_runtime():
    estimate = estimate_memory(**CASE)
    voxels = 100**3
    logits = 145 * voxels * 2  # float16 class maps
    activations = patch_activation_elements((32, 32, 32), (4, 8), ((1, 1, 1), (2, 2, 2)), 2, 145)
    preprocess = voxels * 16 + voxels * 12
    sliding = logits + voxels * 10 + activations * 4
    chunk = (1 << 30) // (8 * voxels + 4 * voxels)  # 89 channels resampled at once
    export = logits + chunk * (voxels * 8 + voxels * 4) + voxels * 14
    assert export > sliding > preprocess
    assert estimate.host_bytes_cpu_run == RUNTIME_OVERHEAD_BYTES + export
    assert estimate.resampled_shape == (100, 100, 100)
    gpu_export = 1024**3 + voxels * 6 + ((1 << 28) // (8 * voxels)) * 8 * voxels
    gpu_predict = 1024**3 + activations * 2 + voxels * 4
    assert estimate.gpu_min_bytes == max(gpu_predict, gpu_export)
    assert estimate.gpu_full_bytes == max(gpu_predict + logits + voxels * 2, gpu_export)


def test_each_extra_fold_adds_its_weights():
    one = estimate_memory(**{**CASE, "weights_bytes_per_fold": 10**8})
    five = estimate_memory(**{**CASE, "n_folds": 5, "weights_bytes_per_fold": 10**8})
    assert five.host_bytes_cpu_run - one.host_bytes_cpu_run == 4 * 10**8  # the export phase dominates both
    assert five.gpu_min_bytes == one.gpu_min_bytes  # one fold at a time on the GPU


def test_resampled_shape_rounds_like_nnunetv2_after_the_transpose():
    pytest.importorskip("nnunetv2")
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

    shape, spacing, target, transpose = (37, 512, 400), (3.0, 0.78, 0.78), (1.5, 1.5, 3.0), (1, 2, 0)
    expected = compute_new_shape([shape[i] for i in transpose], [spacing[i] for i in transpose], target)
    assert resampled_shape(shape, spacing, target, transpose) == tuple(int(v) for v in expected)


def test_a_whole_body_ct_with_the_dap_classes_needs_tens_of_gigabytes():
    estimate = estimate_memory(
        **{
            **CASE,
            "shape_kji": (600, 512, 512),
            "spacing_kji_mm": (2.0, 0.9, 0.9),
            "target_spacing_mm": (1.5, 1.5, 1.5),
        }
    )
    assert 10 * GB < estimate.host_bytes_cpu_run < 100 * GB
    assert "145 classes" in estimate.summary()


def test_cpu_run_that_does_not_fit_says_how_much_is_needed_and_what_to_do():
    estimate = estimate_memory(**CASE)
    with pytest.raises(InsufficientMemoryError) as raised:
        select_device("cpu", estimate, ram_bytes=GB // 2)
    message = str(raised.value)
    assert f"{estimate.host_bytes_cpu_run / GB:.1f} GB of RAM" in message
    assert "0.5 GB are available" in message and "Crop the CT" in message


def test_auto_takes_the_gpu_when_it_has_room_and_the_cpu_otherwise():
    estimate = estimate_memory(**CASE)
    roomy = select_device("auto", estimate, ram_bytes=64 * GB, gpu_free_bytes=40 * GB)
    assert roomy.device == "cuda:0" and roomy.perform_everything_on_device
    between = select_device("auto", estimate, ram_bytes=64 * GB, gpu_free_bytes=estimate.gpu_min_bytes + 1)
    assert between.device == "cuda:0" and not between.perform_everything_on_device
    small_gpu = select_device("auto", estimate, ram_bytes=64 * GB, gpu_free_bytes=estimate.gpu_min_bytes - 1)
    assert small_gpu.device == "cpu" and "GPU memory" in small_gpu.reason
    no_gpu = select_device("auto", estimate, ram_bytes=64 * GB, gpu_free_bytes=None)
    assert no_gpu.device == "cpu"


def test_explicit_gpu_requests_fail_clearly():
    estimate = estimate_memory(**CASE)
    with pytest.raises(MissingDependencyError, match="no CUDA GPU"):
        select_device("cuda", estimate, ram_bytes=64 * GB, gpu_free_bytes=None)
    with pytest.raises(InsufficientMemoryError, match="GPU memory"):
        select_device("cuda:1", estimate, ram_bytes=64 * GB, gpu_free_bytes=GB // 4)
    assert select_device("cuda:1", estimate, ram_bytes=64 * GB, gpu_free_bytes=40 * GB).device == "cuda:1"


def test_nothing_fits_anywhere_is_one_error_with_both_numbers():
    estimate = estimate_memory(**CASE)
    with pytest.raises(InsufficientMemoryError, match=r"Predicting on the CPU needs about .* GB of RAM"):
        select_device("auto", estimate, ram_bytes=GB // 4, gpu_free_bytes=GB // 4)


def test_unknown_device_name_is_refused():
    with pytest.raises(ValueError, match="auto"):
        select_device("tpu", estimate_memory(**CASE), ram_bytes=GB)


def test_memory_check_can_be_switched_off():
    choice = select_device("cpu", estimate_memory(**CASE), ram_bytes=1, check_memory=False)
    assert choice.device == "cpu"
