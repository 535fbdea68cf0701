"""The DAP models in the shared weights manager: manifest, offline install, conversion on first use."""

from __future__ import annotations

import json
import zipfile

import pytest

from DAPAtlasLib.__main__ import main
from DAPAtlasLib.exceptions import MissingWeightsError
from DAPAtlasLib.model_weights import MANIFEST_PATH, install_hint, weights_manager

V2_TRAINER = "Task902_Anatomy_Prediction/nnUNetTrainerV2_noMirroring__nnUNetPlansv2.1"
DRIVE = "https://drive.google.com/drive/folders/1WIlvpeKAWNS99sFprkGKtNZkHm-3agLf"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    monkeypatch.setenv("SLICER_ANATOMY_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture
def released_v2_download(tmp_path):
    """What a user unpacks from the authors' Drive: a tree holding the V2 trainer folder, 5 folds."""
    pytest.importorskip("torch")
    from dap_model_fixtures import write_v1_model

    root = tmp_path / "download" / "nnUNet_trained_models" / "nnUNet" / "3d_fullres"
    write_v1_model(root / V2_TRAINER, folds=(0, 1, 2, 3, 4), checkpoint="model_latest", num_classes=145)
    (root / V2_TRAINER / "fold_0" / "debug.json").write_text("{}")  # extra files are ignored
    return tmp_path / "download"


def test_manifest_lists_both_released_models_file_by_file_without_invented_checksums():
    manifest = json.loads(MANIFEST_PATH.read_text())
    entries = {entry["name"]: entry for entry in manifest["models"]}
    assert set(entries) == {"dap-atlas-v1", "dap-atlas-v2"}
    v2 = entries["dap-atlas-v2"]
    paths = [f["path"] for f in v2["files"]]
    assert f"{V2_TRAINER}/plans.pkl" in paths
    for fold in range(5):
        assert f"{V2_TRAINER}/fold_{fold}/model_latest.model" in paths
        assert f"{V2_TRAINER}/fold_{fold}/model_latest.model.pkl" in paths
    v1_paths = [f["path"] for f in entries["dap-atlas-v1"]["files"]]
    assert (
        "Task901_Atlas_Dataset/nnUNetTrainerV2__nnUNetPlansv2.1/fold_4/model_final_checkpoint.model"
        in v1_paths
    )
    for entry in entries.values():
        assert all(f["sha256"] is None and f["size_bytes"] is None for f in entry["files"])
        assert entry["licence"].startswith("Apache-2.0") and entry["homepage"].endswith(
            "alexanderjaus/AtlasDataset"
        )
        assert DRIVE in entry["install_hint"] and f"models install {entry['name']}" in entry["install_hint"]
    assert v2["postprocess_by_default"] is False and entries["dap-atlas-v1"]["postprocess_by_default"] is True


def test_install_hint_is_one_line_with_the_command(cache):
    hint = install_hint("dap-atlas-v2")
    assert "\n" not in hint and "python -m DAPAtlasLib models install dap-atlas-v2" in hint


def test_installing_from_the_unpacked_download_pins_checksums_and_converts_on_first_use(
    cache, released_v2_download
):
    from DAPAtlasLib.model_weights import resolve_model

    manager = weights_manager()
    installed = manager.install("dap-atlas-v2", released_v2_download)
    assert (installed / V2_TRAINER / "fold_4" / "model_latest.model").exists()
    state = manager.verify("dap-atlas-v2")
    assert state.installed and len(state.unpinned) == 11  # plans + 5 x (model, pkl), pinned at install

    resolved = resolve_model("dap-atlas-v2", manager=manager)
    assert resolved.v2_dir.is_relative_to(cache / "converted")
    assert resolved.settings.voxel_orientation == "LAS" and resolved.settings.postprocess_by_default is False
    assert sorted(p.name for p in resolved.v2_dir.glob("fold_*")) == [f"fold_{k}" for k in range(5)]
    stamp = (resolved.v2_dir / "plans.json").stat().st_mtime_ns
    again = resolve_model("dap-atlas-v2", manager=manager)
    assert again.v2_dir == resolved.v2_dir and (again.v2_dir / "plans.json").stat().st_mtime_ns == stamp

    model = installed / V2_TRAINER / "fold_2" / "model_latest.model"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    assert manager.verify("dap-atlas-v2").corrupt == [f"{V2_TRAINER}/fold_2/model_latest.model"]


@pytest.mark.torch
def test_a_name_segments_the_phantom_once_installed(cache, released_v2_download):
    pytest.importorskip("nnunetv2")
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.inference import segment

    weights_manager().install("dap-atlas-v2", released_v2_download)
    ct = make_phantom("tiny", seed=0).ct
    labels = segment(ct, "dap-atlas-v2", device="cpu", folds=[0])
    assert labels.same_grid_as(ct) and labels.array.max() <= 144
    assert labels.metadata["dap_model"] == "DAP Atlas V2 (Task902, recommended)"


def test_install_from_a_zip_and_offline_use_folder(cache, released_v2_download, tmp_path):
    archive = tmp_path / "dap.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in released_v2_download.rglob("*"):
            if path.is_file():
                handle.write(path, path.relative_to(released_v2_download))
    assert main(["models", "install", "dap-atlas-v2", str(archive)]) == 0
    assert weights_manager().is_installed("dap-atlas-v2")

    shared = released_v2_download / "nnUNet_trained_models" / "nnUNet" / "3d_fullres"
    assert main(["models", "use-folder", "dap-atlas-v2", str(shared)]) == 0
    assert weights_manager().model_dir("dap-atlas-v2") == shared.resolve()


def test_a_download_missing_a_fold_is_refused_naming_the_file(cache, released_v2_download):
    (next(released_v2_download.rglob("fold_3")) / "model_latest.model").unlink()
    with pytest.raises(MissingWeightsError, match=r"fold_3/model_latest\.model"):
        weights_manager().install("dap-atlas-v2", released_v2_download)
    assert not (cache / "dap-atlas-v2").exists()


def test_models_list_and_verify_commands(cache, capsys):
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert str(cache) in listing and "dap-atlas-v1" in listing and "dap-atlas-v2" in listing
    assert "missing 11 file(s)" in listing
    assert main(["models", "verify"]) == 1  # nothing installed: says so, per model, and fails
    verified = capsys.readouterr().out
    assert "dap-atlas-v2: missing: 11 of 11 file(s) absent (not installed)" in verified
    assert "0 of 2 model(s) installed" in verified


def test_uninstalled_model_error_names_the_download_and_the_command(cache):
    from DAPAtlasLib.model_weights import resolve_model

    with pytest.raises(MissingWeightsError) as raised:
        resolve_model("dap-atlas-v2")
    message = str(raised.value)
    assert DRIVE in message and "models install dap-atlas-v2" in message


def test_a_misspelt_model_name_suggests_the_right_one(cache):
    from DAPAtlasLib.model_weights import resolve_model

    with pytest.raises(KeyError, match="dap-atlas-v2"):
        resolve_model("dap-atlas-2")


def test_labels_are_named_after_the_dap_schema_in_converted_models(cache, released_v2_download):
    from DAPAtlasLib.model_weights import resolve_model

    manager = weights_manager()
    manager.install("dap-atlas-v2", released_v2_download)
    labels = json.loads((resolve_model("dap-atlas-v2", manager=manager).v2_dir / "dataset.json").read_text())[
        "labels"
    ]
    assert labels["background"] == 0 and labels["liver"] == 13 and labels["rectum"] == 11
    assert labels["vertebra T3"] == 52 and labels["heart"] == 105 and labels["sternum manubrium"] == 135


def test_a_downloaded_top_folder_is_used_in_place_for_offline_sites(cache, released_v2_download):
    from DAPAtlasLib.model_weights import use_downloaded_folder

    location = use_downloaded_folder("dap-atlas-v2", released_v2_download)  # the top of the download
    assert location == (released_v2_download / "nnUNet_trained_models" / "nnUNet" / "3d_fullres").resolve()
    assert weights_manager().is_installed("dap-atlas-v2")
    assert not (cache / "dap-atlas-v2").exists()  # nothing copied
    with pytest.raises(MissingWeightsError, match="does not contain"):
        use_downloaded_folder("dap-atlas-v1", released_v2_download)


def test_a_v1_folder_is_converted_once_and_a_damaged_cache_is_rebuilt(cache, released_v2_download):
    from DAPAtlasLib.model_weights import resolve_model

    trainer = next(released_v2_download.rglob("nnUNetTrainerV2_noMirroring__nnUNetPlansv2.1"))
    first = resolve_model(trainer)
    assert first.v2_dir.parent == cache / "converted"
    (first.v2_dir / "plans.json").unlink()  # e.g. a user deleting files by hand
    again = resolve_model(trainer)
    assert again.v2_dir == first.v2_dir and (again.v2_dir / "plans.json").exists()
    (trainer / "fold_0" / "model_latest.model").touch()  # the source changed: a new conversion
    assert resolve_model(trainer).v2_dir != first.v2_dir
