"""Phantom grid presets: pure data with no imports, so option checks can read them before the
environment (numpy, ...) is installed (``scripts/run_main_job.sh`` does)."""

#: Physical centre (RAS mm) of every preset field of view: the body is centred at x = 0.
FOV_CENTER_RAS: tuple[float, float, float] = (0.0, 10.0, 510.0)

#: Grid presets. ``spacing_ras_mm`` and ``fov_ras_mm`` are given per *anatomical* axis
#: (left-right, posterior-anterior, inferior-superior) and mapped onto i, j, k by the orientation.
SIZE_PRESETS: dict[str, dict[str, tuple[float, float, float]]] = {
    "tiny": {"spacing_ras_mm": (6.0, 6.0, 6.0), "fov_ras_mm": (420.0, 330.0, 1020.0)},
    "small": {"spacing_ras_mm": (3.0, 3.0, 3.0), "fov_ras_mm": (420.0, 330.0, 1020.0)},
    "medium": {"spacing_ras_mm": (1.6, 1.6, 2.0), "fov_ras_mm": (420.0, 330.0, 1020.0)},
    # 512 x 512 x 510 voxels, a typical whole-body CT reconstruction (FOV 410 mm).
    "realistic": {"spacing_ras_mm": (0.8, 0.8, 2.0), "fov_ras_mm": (409.6, 409.6, 1020.0)},
}
