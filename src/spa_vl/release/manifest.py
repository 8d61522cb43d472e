"""``MANIFEST.json``: the version, the source fingerprint and a sha256 for every file of a release.

Every file of the release folder except the manifest itself is listed, so ``spa-vl verify`` can
name each missing, extra or altered file. Keys are sorted and no wall-clock time is recorded:
the same release gives the same bytes.

``ReleaseManifest.load`` trusts nothing: a manifest that is not UTF-8 JSON, not an object, has
unknown or missing keys, values of the wrong type, or paths that leave the release is refused
with ``ManifestError`` (exit 1) naming MANIFEST.json and the key; no manifest at all is a
``NoManifestError`` (exit 2: the folder is not a release).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath

from spa_vl.errors import DataError, UsageError
from spa_vl.release.layout import FORMAT, MANIFEST_NAME, format_version, in_config

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
SKIPPED_DIRS = frozenset({".cache"})  # datasets' caches beside the data; never part of a release


class ManifestError(DataError):
    """MANIFEST.json exists but cannot be trusted (exit 1); the message names the key."""


class NoManifestError(UsageError):
    """The folder has no MANIFEST.json: it is not a spa-vl release (exit 2)."""


def sha256_file(path: str | Path) -> str:
    """The sha256 of a regular file. Anything else (a FIFO, a device, a folder) is refused with
    an OSError naming it, before a read that could block forever."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class FileEntry:
    path: str  # relative, POSIX separators
    sha256: str
    bytes: int
    rows: int | None = None  # parquet files only
    config: str | None = None
    split: str | None = None


@dataclass
class ReleaseManifest:
    version: str
    package_version: str
    source: dict  # {"format": ..., "fingerprint": "xxh3_128:<hex>" of the raw input, ...}
    files: list[FileEntry] = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # {"read":, "accepted":, "quarantined":, ...}
    format: str = FORMAT
    # how the parquet was written (spa_vl.release.parquet_settings.ParquetSettings.to_dict()); {} in format 1
    parquet: dict = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | Path) -> ReleaseManifest:
        """Read and check ``folder/MANIFEST.json``; ManifestError names the bad key."""
        path = Path(folder) / MANIFEST_NAME
        if not path.exists() and not path.is_symlink():
            raise NoManifestError(f"{path}: no manifest; is this a spa-vl release folder?")
        if path.is_symlink() or not path.is_file():
            # A FIFO would block the read; a link could point anywhere.
            raise ManifestError(f"{path}: not a regular file")
        try:
            raw = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}: not UTF-8 (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "truncated or edited by hand?"
            ) from None
        except RecursionError:
            raise ManifestError(f"{path}: JSON nested too deeply") from None
        except ValueError as exc:  # e.g. an integer literal past Python's 4300-digit limit
            raise ManifestError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: object, name: str = MANIFEST_NAME) -> ReleaseManifest:
        """The manifest held by parsed JSON ``raw``; ManifestError naming ``name`` and the key."""
        if not isinstance(raw, dict):
            raise ManifestError(f"{name}: must be a JSON object, not {_kind(raw)}")
        _check_keys(raw, cls, name, "", required=("version", "package_version", "source", "files"))
        for key in ("format", "version", "package_version"):
            if key in raw and not isinstance(raw[key], str):
                raise ManifestError(f"{name}: key {key!r} must be a string, not {_kind(raw[key])}")
        for key in ("source", "counts", "parquet"):
            if key in raw and not isinstance(raw[key], dict):
                raise ManifestError(f"{name}: key {key!r} must be an object, not {_kind(raw[key])}")
        if not isinstance(raw["files"], list):
            raise ManifestError(f"{name}: key 'files' must be a list, not {_kind(raw['files'])}")
        files = [_file_entry(item, name, i) for i, item in enumerate(raw["files"])]
        return cls(**{**raw, "files": files})

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        data = asdict(self)
        data["files"] = sorted(data["files"], key=lambda f: f["path"])
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    def entry(self, relpath: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == relpath), None)

    def set_file(self, folder: str | Path, relpath: str, **extra) -> FileEntry:
        """Add or refresh the entry of one file (after writing or re-rendering it)."""
        full = Path(folder) / relpath
        return self.add_entry(relpath, sha256_file(full), full.stat().st_size, **extra)

    def add_entry(self, relpath: str, sha256: str, size: int, **extra) -> FileEntry:
        """Add or refresh the entry of one file whose checksum and size are already known (the
        writer takes them from the bytes as it writes)."""
        old = self.entry(relpath)
        keep = {k: getattr(old, k) for k in ("rows", "config", "split")} if old else {}
        keep.update(extra)
        new = FileEntry(relpath, sha256, size, **keep)
        self.files = [f for f in self.files if f.path != relpath] + [new]
        return new

    @property
    def layout_version(self) -> int:
        return format_version(self.format) or 2

    def data_files(self, config: str | None = None, split: str | None = None) -> list[FileEntry]:
        """The parquet files of ``config`` (all configs when None) and ``split``. In format 2 a
        file's ``config`` is the narrowest config holding it, and ``default`` holds them all."""
        return sorted(
            (
                f
                for f in self.files
                if f.rows is not None
                and (config is None or in_config(f.config, config, self.layout_version))
                and (split is None or f.split == split)
            ),
            key=lambda f: f.path,
        )


_KINDS = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
          str: "a string", list: "a list", dict: "an object"}  # fmt: skip


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _check_keys(raw: dict, cls: type, name: str, where: str, required: tuple[str, ...]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ManifestError(f"{name}: unknown key '{where}{unknown[0]}' (known: {', '.join(sorted(known))})")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ManifestError(f"{name}: missing key '{where}{missing[0]}'")


def _file_entry(item: object, name: str, index: int) -> FileEntry:
    where = f"files[{index}]"
    if not isinstance(item, dict):
        raise ManifestError(f"{name}: key {where!r} must be an object, not {_kind(item)}")
    _check_keys(item, FileEntry, name, f"{where}.", required=("path", "sha256", "bytes"))
    checks = {
        "path": lambda v: isinstance(v, str) and v != "",
        "sha256": lambda v: isinstance(v, str) and _SHA256.match(v) is not None,
        "bytes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "rows": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        "config": lambda v: v is None or isinstance(v, str),
        "split": lambda v: v is None or isinstance(v, str),
    }
    wanted = {
        "path": "a non-empty string",
        "sha256": "64 lowercase hex digits",
        "bytes": "a whole number >= 0",
        "rows": "null or a whole number >= 0",
        "config": "null or a string",
        "split": "null or a string",
    }
    for key, ok in checks.items():
        if key in item and not ok(item[key]):
            raise ManifestError(f"{name}: key '{where}.{key}' must be {wanted[key]}, not {item[key]!r}")
    return FileEntry(**item)


def path_problem(relpath: str) -> str | None:
    """Why a manifest path may not be used (it would leave the release), or None.

    Only plain relative POSIX paths inside the folder: no absolute path, no drive, no ``..``,
    ``.`` or empty segment, no backslash, no NUL."""
    if "\\" in relpath or "\0" in relpath:
        return "holds a backslash or NUL"
    pure = PurePosixPath(relpath)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", relpath):
        return "is absolute"
    parts = relpath.split("/")
    if ".." in parts:
        return "goes up with '..'"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' segment"
    return None


def release_entries(folder: str | Path) -> list[str]:
    """Every entry under ``folder`` that is not a folder (regular files, links, FIFOs, sockets,
    devices), at any depth, hidden ones included, except the manifest and datasets' caches.
    Links to folders are listed, not followed."""
    root = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        # os.walk puts links to folders among dirnames; they are entries, not places to walk.
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in [*filenames, *links]:
            rel = (rel_dir / name).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def release_files(folder: str | Path) -> list[str]:
    """Every regular file under ``folder`` (not links or special files) except the manifest,
    as sorted relative POSIX paths, hidden ones and any depth included."""
    root = Path(folder)
    return [rel for rel in release_entries(root) if _is_regular(root / rel)]


def _is_regular(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def refresh_manifest(folder: str | Path, relpaths: list[str]) -> ReleaseManifest:
    """Re-hash files that a later step rewrote (the card, plots) and save the manifest."""
    manifest = ReleaseManifest.load(folder)
    for rel in relpaths:
        manifest.set_file(folder, rel)
    manifest.write(folder)
    return manifest
