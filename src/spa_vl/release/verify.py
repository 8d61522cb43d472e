"""Check a release folder against its ``MANIFEST.json``: every missing, extra or altered file.

Every problem is collected and named (never stop at the first), so one run of ``spa-vl verify``
tells the maintainer everything that differs from what the builder wrote. Nothing is trusted:
a malformed manifest is a problem naming its key; a listed path that would leave the release
(absolute, ``..``, a link pointing outside) is refused, not followed; a listed path that is a
folder, a FIFO or a device is named and never opened; every entry on disk that the manifest does
not list is named, whatever its name (hidden files too) and depth.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from spa_vl.errors import DataError, UsageError
from spa_vl.problems import Issue
from spa_vl.release.layout import FORMAT, FORMATS
from spa_vl.release.manifest import (
    MANIFEST_NAME,
    FileEntry,
    ManifestError,
    ReleaseManifest,
    path_problem,
    release_entries,
    sha256_file,
)


@dataclass(frozen=True)
class FileProblem(Issue):
    """One file that does not match the manifest: ``where`` is its path in the release,
    ``code`` its kind (missing, extra, altered, manifest, unsafe-path, not-a-file)."""

    path: str
    kind: str
    detail: str

    @property
    def where(self) -> str:
        return self.path

    @property
    def code(self) -> str:
        return self.kind

    @property
    def message(self) -> str:
        return self.detail

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_entry(root: Path, real_root: Path, entry: FileEntry, hashes: bool = True) -> FileProblem | None:
    unsafe = path_problem(entry.path)
    if unsafe:
        return FileProblem(entry.path, "unsafe-path", f"{unsafe}: the path leaves the release; refused")
    full = root / entry.path
    try:
        if not full.exists() and not full.is_symlink():
            return FileProblem(entry.path, "missing", "listed in the manifest, not on disk")
        target = full.resolve()
        if not _inside(target, real_root):
            return FileProblem(entry.path, "unsafe-path", f"a link to {target}, outside the release; refused")
        if not target.exists():
            return FileProblem(entry.path, "missing", "a link to nothing (dangling)")
        mode = os.stat(target).st_mode
        if not stat.S_ISREG(mode):
            return FileProblem(entry.path, "not-a-file", f"listed as a file, but it is {_file_kind(mode)}")
        size = os.stat(target).st_size
        # Size first: it is free and names a truncated file without hashing it.
        if size != entry.bytes:
            return FileProblem(entry.path, "altered", f"{size} bytes, manifest says {entry.bytes}")
        if not hashes:
            return None
        digest = sha256_file(target)
    except (OSError, ValueError) as exc:  # ValueError: a NUL or unencodable name
        return FileProblem(entry.path, "unreadable", f"cannot be read: {exc}")
    if digest != entry.sha256:
        return FileProblem(
            entry.path, "altered", f"sha256 {digest[:12]}…, manifest says {entry.sha256[:12]}…"
        )
    return None


def _extra(root: Path, rel: str) -> FileProblem:
    path = root / rel
    what = "on disk, not listed in the manifest"
    try:
        if path.is_symlink():
            what += f" (a link to {os.readlink(path)})"
        else:
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                what += f" ({_file_kind(mode)})"
    except OSError:
        pass
    return FileProblem(rel, "extra", what)


def verify_release(folder: str | Path, *, hashes: bool = True) -> list[FileProblem]:
    """Recompute every checksum of ``folder``; return the problems (empty when it verifies).

    ``hashes=False`` checks all but the checksums (every listed file there, a regular file of
    its size, nothing unlisted): the build's check of a folder it has just written, whose
    checksums it took from the bytes as it wrote them. A malformed MANIFEST.json is one
    problem naming its key. Raises UsageError when the folder
    does not exist, and NoManifestError (a UsageError) when it has no MANIFEST.json.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder" if root.exists() else f"{root}: no such folder")
    try:
        manifest = ReleaseManifest.load(root)
    except ManifestError as exc:
        message = str(exc).removeprefix(f"{root / MANIFEST_NAME}: ")
        return [FileProblem(MANIFEST_NAME, "manifest", message)]
    problems: list[FileProblem] = []
    if manifest.format not in FORMATS:
        problems.append(
            FileProblem(MANIFEST_NAME, "manifest", f"format {manifest.format!r}, expected {FORMAT!r}")
        )
    real_root = root.resolve()
    listed: set[str] = set()
    for entry in manifest.files:
        if entry.path in listed or entry.path == MANIFEST_NAME:
            problems.append(FileProblem(entry.path, "manifest", "listed twice or lists the manifest"))
            continue
        listed.add(entry.path)
        problem = _check_entry(root, real_root, entry, hashes)
        if problem:
            problems.append(problem)
    problems += [_extra(root, rel) for rel in release_entries(root) if rel not in listed]
    return sorted(problems, key=lambda p: (p.path, p.kind))


def data_problems(folder: str | Path) -> list[FileProblem]:
    """The problems of ``verify_release`` that make the data itself untrustworthy: a malformed
    manifest, and data files that are missing, altered or unsafe (not files merely added, nor
    an edited card). Commands that read the data (``card``, ``diff``) check this first."""
    return [
        p
        for p in verify_release(folder)
        if p.path == MANIFEST_NAME or (p.kind != "extra" and p.path.startswith("data/"))
    ]


def refuse_untrusted_data(folder: str | Path, doing: str) -> None:
    """Raise DataError (exit 1) naming the first problems when ``data_problems`` finds any."""
    problems = data_problems(folder)
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise DataError(
            f"{folder}: the data does not match MANIFEST.json, so {doing} "
            f"(run `spa-vl verify {folder}`): {shown}{more}"
        )
