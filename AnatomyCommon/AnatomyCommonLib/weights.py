"""The weights manager shared by DAP Atlas and LIMIS: manifests, a cache folder, offline installs.

A *manifest* (JSON, shipped inside each Lib) lists models by name and version with their files:
relative path, source URL, SHA256 and size, plus the licence and an install hint. Installed
files live in a cache folder (``$SLICER_ANATOMY_WEIGHTS_DIR``, else
``$XDG_CACHE_HOME/slicer-anatomy-toolkit/weights``, else ``~/.cache/...``) under
``<name>/<version>/``, or in a folder the user registered with :meth:`WeightsManager.use_local_folder`
(hospitals without internet copy the files there).

Nothing here downloads unless asked (``allow_download=True``), never at import time.
When a manifest has no SHA256 or size for a file (the authors publish none), the checksum and
size measured at install are recorded in ``installed.json`` (``{path: {"sha256", "size_bytes"}}``)
and checked by :meth:`verify` from then on ("pinned at install"); the report says so.

Manifest format::

    {"schema": 1, "models": [{"name": "...", "version": "...", "description": "...",
      "licence": "...", "homepage": "...", "install_hint": "...",
      "archive": {"url": "...", "sha256": null, "size_bytes": null},      # optional
      "files": [{"path": "fold_0/model_latest.model", "url": null, "sha256": null,
                 "size_bytes": null, "optional": false}]}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import (
    CorruptWeightsError,
    InputNotFoundError,
    MissingWeightsError,
    NetworkUnavailableError,
    UnsupportedFormatError,
)

ENV_CACHE_DIR = "SLICER_ANATOMY_WEIGHTS_DIR"
INSTALLED_RECORD = "installed.json"
LOCAL_FOLDERS_RECORD = "local_folders.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One file of a model: where it goes (relative path), where it comes from, how to check it."""

    path: str
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    optional: bool = False


@dataclass(frozen=True)
class ModelEntry:
    """One versioned model of a manifest."""

    name: str
    version: str
    files: tuple[WeightFile, ...]
    description: str = ""
    licence: str = "unknown"
    homepage: str = ""
    install_hint: str = ""
    archive_url: str | None = None
    archive_sha256: str | None = None
    archive_size_bytes: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_dict(cls, data: dict) -> ModelEntry:
        try:
            files = tuple(WeightFile(**f) for f in data["files"])
            archive = data.get("archive") or {}
            known = {
                "name",
                "version",
                "files",
                "description",
                "licence",
                "homepage",
                "install_hint",
                "archive",
            }
            return cls(
                name=data["name"],
                version=str(data["version"]),
                files=files,
                description=data.get("description", ""),
                licence=data.get("licence", "unknown"),
                homepage=data.get("homepage", ""),
                install_hint=data.get("install_hint", ""),
                archive_url=archive.get("url"),
                archive_sha256=archive.get("sha256"),
                archive_size_bytes=archive.get("size_bytes"),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError) as error:
            raise UnsupportedFormatError(f"Malformed model entry in a weights manifest: {error}") from error

    @property
    def required_files(self) -> tuple[WeightFile, ...]:
        return tuple(f for f in self.files if not f.optional)


@dataclass
class ModelStatus:
    """What :meth:`WeightsManager.status` found for one model."""

    name: str
    version: str
    location: Path
    installed: bool
    missing: list[str]
    corrupt: list[str]
    unpinned: list[str]  # files whose checksum was pinned at install, not by the manifest
    unchecked: list[str]  # files with no checksum at all (e.g. in a registered local folder)
    local_folder: bool
    problems: dict[str, str] = field(default_factory=dict)  # file -> why it is corrupt

    @property
    def state(self) -> str:
        """One of "installed", "missing" (a required file is absent) or "corrupt" (size or hash differs)."""
        if self.corrupt:
            return "corrupt"
        return "missing" if self.missing else "installed"


def sha256_of(path: str | Path) -> str:
    """Hex SHA256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """The weights cache folder (see the module docstring for the order of precedence)."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "slicer-anatomy-toolkit" / "weights"


def load_manifest(path: str | Path) -> list[ModelEntry]:
    """The model entries of one manifest file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputNotFoundError(f"Weights manifest not found: {path}") from error
    except json.JSONDecodeError as error:
        raise UnsupportedFormatError(f"Weights manifest {path} is not valid JSON: {error}") from error
    if data.get("schema") != 1 or not isinstance(data.get("models"), list):
        raise UnsupportedFormatError(f"Weights manifest {path} must have 'schema': 1 and a 'models' list.")
    return [ModelEntry.from_dict(entry) for entry in data["models"]]


class WeightsManager:
    """Finds, installs and verifies model weights listed in one or more manifests."""

    def __init__(self, manifests: Iterable[str | Path], cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._entries: dict[str, ModelEntry] = {}
        for manifest in manifests:
            for entry in load_manifest(manifest):
                self._entries[entry.name] = entry

    # ------------------------------------------------------------------ lookup
    def entries(self) -> list[ModelEntry]:
        return sorted(self._entries.values(), key=lambda e: e.name)

    def entry(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise KeyError(
                f"No model called {name!r} in the weights manifest.{hint} "
                f"Known: {', '.join(sorted(self._entries))}."
            ) from None

    def _local_folders(self) -> dict[str, str]:
        record = self.cache_dir / LOCAL_FOLDERS_RECORD
        if not record.exists():
            return {}
        return json.loads(record.read_text(encoding="utf-8"))

    def model_dir(self, name: str) -> Path:
        """Where the model's files are (or will be) found: a registered local folder or the cache."""
        entry = self.entry(name)
        local = self._local_folders().get(entry.name)
        if local:
            return Path(local)
        return self.cache_dir / entry.name / entry.version

    # ------------------------------------------------------------------ status
    def _installed_record(self, folder: Path) -> dict[str, dict]:
        """``{path: {"sha256", "size_bytes"}}`` measured at install (older records hold the digest only)."""
        record = folder / INSTALLED_RECORD
        data = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        return {k: v if isinstance(v, dict) else {"sha256": v, "size_bytes": None} for k, v in data.items()}

    def status(self, name: str, *, check_hashes: bool = False) -> ModelStatus:
        """Which files are present, missing or (with ``check_hashes``) corrupt."""
        entry = self.entry(name)
        folder = self.model_dir(name)
        record = self._installed_record(folder)
        missing, corrupt, unpinned, unchecked = [], [], [], []
        problems: dict[str, str] = {}
        for weight in entry.files:
            path = folder / weight.path
            if not path.is_file():
                if not weight.optional:
                    missing.append(weight.path)
                continue
            pinned = record.get(weight.path, {})
            expected = weight.sha256 or pinned.get("sha256")
            expected_size = weight.size_bytes if weight.size_bytes is not None else pinned.get("size_bytes")
            if weight.sha256 is None:
                (unpinned if weight.path in record else unchecked).append(weight.path)
            size = path.stat().st_size
            if expected_size is not None and size != expected_size:
                problems[weight.path] = f"{size} bytes, expected {expected_size}"
            elif check_hashes and expected and sha256_of(path) != expected:
                problems[weight.path] = f"SHA256 differs from {expected[:12]}..."
            if weight.path in problems:
                corrupt.append(weight.path)
        return ModelStatus(
            name=entry.name,
            version=entry.version,
            location=folder,
            installed=not missing and not corrupt,
            missing=missing,
            corrupt=corrupt,
            unpinned=unpinned,
            unchecked=unchecked,
            local_folder=entry.name in self._local_folders(),
            problems=problems,
        )

    def is_installed(self, name: str) -> bool:
        return self.status(name).installed

    def missing_message(self, name: str) -> str:
        """One paragraph a user can act on: which files, where from, where to put them, which command."""
        entry = self.entry(name)
        state = self.status(name)
        lines = [
            f"Model weights '{entry.name}' (version {entry.version}) are not installed in {state.location}."
        ]
        if state.missing:
            shown = state.missing[:4]
            more = f" and {len(state.missing) - 4} more" if len(state.missing) > 4 else ""
            lines.append(f"Missing: {', '.join(shown)}{more}.")
        if state.corrupt:
            lines.append(f"Corrupt (size or checksum differs): {', '.join(state.corrupt)}.")
        source = entry.archive_url or next((f.url for f in entry.files if f.url), None) or entry.homepage
        if source:
            lines.append(f"Get them from {source} (licence: {entry.licence}).")
        if entry.install_hint:
            lines.append(entry.install_hint)
        return " ".join(lines)

    def require(self, name: str) -> Path:
        """The installed model folder, or :class:`MissingWeightsError` with what to do."""
        state = self.status(name)
        if not state.installed:
            if state.corrupt:
                raise CorruptWeightsError(self.missing_message(name))
            raise MissingWeightsError(self.missing_message(name))
        return state.location

    def verify(self, name: str) -> ModelStatus:
        """Re-hash every file against the manifest (or the checksum pinned at install)."""
        return self.status(name, check_hashes=True)

    # ------------------------------------------------------------------ install
    def use_local_folder(self, name: str, folder: str | Path) -> ModelStatus:
        """Register ``folder`` (holding the manifest's relative paths) as the model's location."""
        entry = self.entry(name)
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise InputNotFoundError(f"{folder} is not a folder.")
        missing = [f.path for f in entry.required_files if not (folder / f.path).is_file()]
        if missing:
            raise MissingWeightsError(
                f"{folder} does not hold the files of '{name}': missing {', '.join(missing[:4])}"
                f"{' ...' if len(missing) > 4 else ''}. Point to the folder that contains them."
            )
        record = self.cache_dir / LOCAL_FOLDERS_RECORD
        folders = self._local_folders()
        folders[entry.name] = str(folder)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(folders, indent=2), encoding="utf-8")
        return self.status(name)

    def forget_local_folder(self, name: str) -> None:
        folders = self._local_folders()
        if folders.pop(self.entry(name).name, None) is not None:
            (self.cache_dir / LOCAL_FOLDERS_RECORD).write_text(
                json.dumps(folders, indent=2), encoding="utf-8"
            )

    def install(
        self,
        name: str,
        source: str | Path | None = None,
        *,
        allow_download: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Install a model's files into the cache, checking sizes and checksums.

        ``source`` is a local folder, a zip archive, a single file, or an URL (only with
        ``allow_download``; ``None`` means the manifest's URLs). Files are staged in a temporary
        folder and moved into place only when all of them passed their checks, so a failed or
        cancelled install leaves nothing half-written.
        """
        entry = self.entry(name)
        target = self.cache_dir / entry.name / entry.version
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".install-{entry.name}-", dir=self.cache_dir) as staging_dir:
            staging = Path(staging_dir)
            if source is None or _is_url(str(source)):
                self._download_into(
                    entry, staging, None if source is None else str(source), allow_download, progress
                )
            else:
                self._copy_local_into(entry, Path(source).expanduser(), staging)
            record = self._check_staged(entry, staging)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / "model"), target)
            (target / INSTALLED_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        self.forget_local_folder(name)
        return target

    def _copy_local_into(self, entry: ModelEntry, source: Path, staging: Path) -> None:
        if not source.exists():
            raise InputNotFoundError(f"Cannot install '{entry.name}' from {source}: no such file or folder.")
        root = source
        # torch's .pt files are zip archives too: a file named like one of the model's files is that file.
        is_weight_file = any(Path(weight.path).name == source.name for weight in entry.files)
        if source.is_file() and zipfile.is_zipfile(source) and not is_weight_file:
            root = staging / "unzipped"
            with zipfile.ZipFile(source) as archive:
                _safe_extract(archive, root)
        elif source.is_file():
            if len(entry.files) != 1:
                raise UnsupportedFormatError(
                    f"'{entry.name}' has {len(entry.files)} files; install it from a folder or a zip archive."
                )
            destination = staging / "model" / entry.files[0].path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            return
        for weight in entry.files:
            found = _find_relative(root, weight.path)
            if found is None:
                if weight.optional:
                    continue
                raise MissingWeightsError(
                    f"{source} does not contain {weight.path} of '{entry.name}'. "
                    "Give the folder or zip that holds the model's files."
                )
            destination = staging / "model" / weight.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, destination)

    def downloadable(self, name: str) -> bool:
        """Whether the manifest gives URLs for every required file (or an archive) of ``name``."""
        entry = self.entry(name)
        return bool(entry.archive_url) or all(f.url for f in entry.required_files)

    def _no_download_message(self, entry: ModelEntry) -> str:
        where = entry.install_hint or (f"Get its files from {entry.homepage}." if entry.homepage else "")
        return (
            f"'{entry.name}' has no download URL, so it cannot be downloaded by the toolkit. {where}".strip()
        )

    def _download_into(
        self,
        entry: ModelEntry,
        staging: Path,
        url: str | None,
        allow_download: bool,
        progress: Callable[[int, int | None], None] | None,
    ) -> None:
        if url is None and not self.downloadable(entry.name):
            raise MissingWeightsError(self._no_download_message(entry))
        if not allow_download:
            raise MissingWeightsError(
                f"Installing '{entry.name}' from the internet needs allow_download=True "
                f"(--download on the command line). {entry.install_hint}".strip()
            )
        archive_url = url or entry.archive_url
        if archive_url and (url is not None or not any(f.url for f in entry.files)):
            archive = staging / "archive.zip"
            _download(archive_url, archive, progress, entry.name, Path(archive_url).name or "archive.zip")
            if entry.archive_sha256 and sha256_of(archive) != entry.archive_sha256:
                raise CorruptWeightsError(
                    f"The archive downloaded from {archive_url} fails its SHA256 check."
                )
            self._copy_local_into(entry, archive, staging)
            return
        wanted = [weight for weight in entry.files if weight.url is not None]
        for weight in wanted:
            destination = staging / "model" / weight.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                _download(weight.url, destination, progress, entry.name, weight.path)
            except NetworkUnavailableError as error:
                if len(wanted) == 1:
                    raise
                raise NetworkUnavailableError(
                    offline_install_advice(
                        entry.name, [w.path for w in wanted], [w.url for w in wanted], error.reason
                    )
                ) from None

    def _check_staged(self, entry: ModelEntry, staging: Path) -> dict[str, dict]:
        record = {}
        for weight in entry.files:
            path = staging / "model" / weight.path
            if not path.is_file():
                if weight.optional:
                    continue
                raise MissingWeightsError(
                    f"{weight.path} of '{entry.name}' was not found in the given source."
                )
            if weight.size_bytes is not None and path.stat().st_size != weight.size_bytes:
                raise CorruptWeightsError(
                    f"{weight.path} has {path.stat().st_size} bytes but '{entry.name}' expects "
                    f"{weight.size_bytes}: the file is incomplete or a different version."
                )
            digest = sha256_of(path)
            if weight.sha256 and digest != weight.sha256:
                raise CorruptWeightsError(
                    f"{weight.path} fails its SHA256 check "
                    f"(expected {weight.sha256[:12]}..., got {digest[:12]}...): "
                    "the file is corrupt or a different version; download it again."
                )
            record[weight.path] = {"sha256": digest, "size_bytes": path.stat().st_size}
        return record


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "file://"))


def offline_install_advice(name: str, files: Sequence[str], urls: Sequence[str], reason: str) -> str:
    """One line: the download failed, which files to fetch from where, and the command to run."""
    if len(files) == 1:
        what, target = f"{Path(files[0]).name} from {urls[0]}", "FILE"
    else:
        folders = sorted({url.rsplit("/", 1)[0] + "/" for url in urls})
        where = folders[0] if len(folders) == 1 else ", ".join(urls)
        what = f"{', '.join(files)} from {where} into one folder"
        target = "FOLDER"
    return (
        f"no network ({reason}): download {what} on a connected machine and run "
        f"`models install {name} --from {target}`"
    )


def _download(
    url: str,
    destination: Path,
    progress: Callable[[int, int | None], None] | None,
    name: str = "",
    file: str = "",
) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                handle.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as error:
        raise _network_error(
            name, file or Path(url).name, url, f"the server answered HTTP {error.code}"
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", None) or error
        raise _network_error(name, file or Path(url).name, url, str(reason)) from None


def _network_error(name: str, file: str, url: str, reason: str) -> NetworkUnavailableError:
    error = NetworkUnavailableError(offline_install_advice(name, [file], [url], reason))
    error.reason = reason
    return error


def _safe_extract(archive: zipfile.ZipFile, destination: Path) -> None:
    destination = destination.resolve()
    for member in archive.namelist():
        if not (destination / member).resolve().is_relative_to(destination):
            raise UnsupportedFormatError(
                f"Refusing to extract {member!r}: it points outside the target folder."
            )
    archive.extractall(destination)


def _find_relative(root: Path, relative: str) -> Path | None:
    """``root/relative`` or, if the user gave a parent folder, the unique ``**/relative`` under it."""
    direct = root / relative
    if direct.is_file():
        return direct
    matches = [p for p in root.rglob(Path(relative).name) if p.as_posix().endswith("/" + relative)]
    return matches[0] if len(matches) == 1 else None


# ---------------------------------------------------------------------------- CLI
def add_models_cli(commands, manager_factory: Callable[[], WeightsManager]) -> None:
    """Add ``models list|install|verify|use-folder`` to an argparse sub-parsers object."""
    models = commands.add_parser("models", help="list, install and verify model weights")
    actions = models.add_subparsers(title="actions", metavar="ACTION")

    listing = actions.add_parser("list", help="models in the manifest and whether they are installed")
    listing.set_defaults(handler=lambda args: _cli_list(manager_factory()))

    install = actions.add_parser("install", help="install a model from a folder, zip, file or URL")
    install.add_argument("name")
    install.add_argument("source", nargs="?", help="folder, zip or file (default: the manifest's URLs)")
    install.add_argument(
        "--from",
        dest="from_source",
        metavar="FILE_OR_FOLDER",
        help="the same as SOURCE: a folder, zip or file copied from a connected machine (default: none)",
    )
    install.add_argument(
        "--download",
        action="store_true",
        help="allow downloading from the manifest's URLs (default: off; nothing is downloaded without it)",
    )
    install.set_defaults(handler=lambda args: _cli_install(manager_factory(), args, install.prog))

    verify = actions.add_parser(
        "verify",
        epilog="exit codes: 0 every model checked is installed and intact, 1 a file is corrupt, the "
        "named model is missing or nothing is installed, 2 unknown model name",
        help="re-hash the files of every model: installed / missing / corrupt (exit 1 when corrupt)",
    )
    verify.add_argument("name", nargs="?", help="one model (default: every model of the manifest)")
    verify.set_defaults(handler=lambda args: _cli_verify(manager_factory(), args.name))

    folder = actions.add_parser("use-folder", help="use weights from a local folder (offline sites)")
    folder.add_argument("name")
    folder.add_argument("folder")
    folder.set_defaults(handler=lambda args: _cli_use_folder(manager_factory(), args))


def _cli_list(manager: WeightsManager) -> int:
    print(f"weights folder: {manager.cache_dir}")
    for entry in manager.entries():
        state = manager.status(entry.name)
        flag = {
            "installed": "installed",
            "missing": f"missing {len(state.missing)} file(s)",
            "corrupt": f"corrupt {len(state.corrupt)} file(s)",
        }[state.state]
        print(f"{entry.name:32s} {entry.version:10s} {flag:22s} {entry.licence:14s} {entry.description}")
    return 0


def _cli_install(manager: WeightsManager, args, prog: str = "models install") -> int:
    source = args.source
    if getattr(args, "from_source", None):
        if source and source != args.from_source:
            raise ValueError("give the source once: either SOURCE or --from, not both")
        source = args.from_source
    try:
        target = manager.install(args.name, source, allow_download=args.download)
    except NetworkUnavailableError as error:  # name the full command to copy
        raise NetworkUnavailableError(str(error).replace("`models install ", f"`{prog} ")) from None
    print(f"installed {args.name} in {target}")
    return 0


def _cli_verify(manager: WeightsManager, name: str | None) -> int:
    """One line per model (installed / missing / corrupt), one per bad file, then a count.

    Exit 1 when a file is corrupt, when the named model is missing, or when nothing is installed.
    """
    names: Sequence[str] = [name] if name else [e.name for e in manager.entries()]
    exit_code = 0
    installed = 0
    for model in names:
        entry = manager.entry(model)
        state = manager.verify(model)
        label = f"{model}: "
        if state.state == "installed":
            installed += 1
            notes = [f"installed in {state.location}"]
            if state.unpinned:
                notes.append(f"{len(state.unpinned)} checksum(s) pinned at install")
            if state.unchecked:
                notes.append(f"{len(state.unchecked)} file(s) without any checksum")
            print(label + "ok (" + "; ".join(notes) + ")")
            continue
        required = len(entry.required_files)
        if state.state == "corrupt":
            exit_code = 1
            print(label + f"corrupt: {len(state.corrupt)} file(s) differ from their size or checksum")
            for path in state.corrupt:
                print(f"  corrupt {path}: {state.problems.get(path, 'checksum differs')}")
        if state.missing:
            if name:
                exit_code = 1
            absent = "not installed" if len(state.missing) == required else "incompletely installed"
            print(label + f"missing: {len(state.missing)} of {required} file(s) absent ({absent})")
            for path in state.missing[:4]:
                print(f"  missing {path}")
    print(f"{installed} of {len(names)} model(s) installed and verified in {manager.cache_dir}.")
    return 1 if exit_code or not installed else 0


def _cli_use_folder(manager: WeightsManager, args) -> int:
    state = manager.use_local_folder(args.name, args.folder)
    print(f"{args.name} now read from {state.location} ({'complete' if state.installed else 'incomplete'})")
    return 0
