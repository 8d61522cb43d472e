"""``MANIFEST.json``: the version, the source fingerprint and a sha256 for every file of a release.

Every file of the release folder except the manifest itself is listed, so ``spa-vl verify`` can
name each missing, extra or altered file. Keys are sorted and no wall-clock time is recorded:
the same release gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_NAME = "MANIFEST.json"
FORMAT = "spa-vl-release/1"
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
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
    source: dict  # {"format": ..., "fingerprint": sha256 of the raw input, ...}
    files: list[FileEntry] = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # {"read":, "accepted":, "quarantined":, ...}
    format: str = FORMAT

    @classmethod
    def load(cls, folder: str | Path) -> ReleaseManifest:
        path = Path(folder) / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no manifest; is this a spa-vl release folder?") from None
        files = [FileEntry(**f) for f in raw.pop("files", [])]
        return cls(files=files, **raw)

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
        old = self.entry(relpath)
        keep = {k: getattr(old, k) for k in ("rows", "config", "split")} if old else {}
        keep.update(extra)
        new = FileEntry(relpath, sha256_file(full), full.stat().st_size, **keep)
        self.files = [f for f in self.files if f.path != relpath] + [new]
        return new

    def data_files(self, config: str | None = None, split: str | None = None) -> list[FileEntry]:
        return sorted(
            (
                f
                for f in self.files
                if f.rows is not None
                and (config is None or f.config == config)
                and (split is None or f.split == split)
            ),
            key=lambda f: f.path,
        )


def release_files(folder: str | Path) -> list[str]:
    """Every file under ``folder`` except the manifest, as sorted relative POSIX paths."""
    root = Path(folder)
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME and ".cache" not in p.relative_to(root).parts
    )


def refresh_manifest(folder: str | Path, relpaths: list[str]) -> ReleaseManifest:
    """Re-hash files that a later step rewrote (the card, plots) and save the manifest."""
    manifest = ReleaseManifest.load(folder)
    for rel in relpaths:
        manifest.set_file(folder, rel)
    manifest.write(folder)
    return manifest
