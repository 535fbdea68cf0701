"""``models verify`` names every model installed / missing / corrupt; install records sizes and hashes."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from AnatomyCommonLib.cli import dispatch
from AnatomyCommonLib.weights import INSTALLED_RECORD, WeightsManager, add_models_cli

FILES = {"plans.json": b'{"plans": 1}', "fold_0/checkpoint.pth": b"\x00weights" * 100}


def _manifest(path: Path) -> Path:
    """Two models without published checksums or sizes (as the DAP Atlas manifest) and one pinned."""

    def model(name, pinned):
        return {
            "name": name,
            "version": "1",
            "files": [
                {"path": p, "url": None, "sha256": hashlib.sha256(d).hexdigest() if pinned else None,
                 "size_bytes": len(d) if pinned else None, "optional": False}
                for p, d in FILES.items()
            ],
        }  # fmt: skip

    path.write_text(json.dumps({"schema": 1, "models": [model("alpha", False), model("beta", False),
                                                         model("gamma", True)]}))  # fmt: skip
    return path


def _source(root: Path) -> Path:
    for relative, data in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def _cli(manager):
    parser = argparse.ArgumentParser()
    add_models_cli(parser.add_subparsers(), lambda: manager)
    return parser


def test_install_records_size_and_sha256_of_every_file(tmp_path):
    manager = WeightsManager([_manifest(tmp_path / "m.json")], cache_dir=tmp_path / "cache")
    target = manager.install("alpha", _source(tmp_path / "src"))
    record = json.loads((target / INSTALLED_RECORD).read_text())
    for relative, data in FILES.items():
        assert record[relative] == {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


def test_verify_says_installed_missing_corrupt_per_model_and_fails_on_corruption(tmp_path, capsys):
    manager = WeightsManager([_manifest(tmp_path / "m.json")], cache_dir=tmp_path / "cache")
    source = _source(tmp_path / "src")
    manager.install("alpha", source)
    beta = manager.install("beta", source)
    parser = _cli(manager)
    assert dispatch(parser, ["models", "verify"]) == 0  # gamma missing is not an error when checking all
    out = capsys.readouterr().out
    assert "alpha: ok" in out and "beta: ok" in out and "gamma: missing: 2 of 2" in out

    # same size, one byte changed: only the checksum pinned at install can tell
    weights = beta / "fold_0/checkpoint.pth"
    weights.write_bytes(b"\x01" + weights.read_bytes()[1:])
    assert dispatch(parser, ["models", "verify"]) == 1
    out = capsys.readouterr().out
    assert "alpha: ok" in out
    assert "beta: corrupt" in out and "corrupt fold_0/checkpoint.pth: SHA256 differs" in out

    # a truncated file is caught by the size recorded at install, without hashing
    weights.write_bytes(b"short")
    state = manager.status("beta")
    assert state.state == "corrupt" and "5 bytes, expected 800" in state.problems["fold_0/checkpoint.pth"]
    assert dispatch(parser, ["models", "list"]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "corrupt 1 file(s)" in listing["beta"] and "installed" in listing["alpha"]


def test_verify_of_a_named_missing_model_fails(tmp_path, capsys):
    manager = WeightsManager([_manifest(tmp_path / "m.json")], cache_dir=tmp_path / "cache")
    assert dispatch(_cli(manager), ["models", "verify", "gamma"]) == 1
    assert "gamma: missing" in capsys.readouterr().out


def test_records_written_before_sizes_were_recorded_still_verify(tmp_path, capsys):
    manager = WeightsManager([_manifest(tmp_path / "m.json")], cache_dir=tmp_path / "cache")
    target = manager.install("alpha", _source(tmp_path / "src"))
    old = {p: hashlib.sha256(d).hexdigest() for p, d in FILES.items()}  # the earlier {path: digest} format
    (target / INSTALLED_RECORD).write_text(json.dumps(old))
    assert manager.verify("alpha").state == "installed"
    (target / "plans.json").write_bytes(b'{"plans": 2}')
    assert manager.verify("alpha").state == "corrupt"
