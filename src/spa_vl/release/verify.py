"""Check a release folder against its ``MANIFEST.json``: every missing, extra or altered file.

Every problem is collected and named (never stop at the first), so one run of ``spa-vl verify``
tells the maintainer everything that differs from what the builder wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spa_vl.release.manifest import FORMAT, MANIFEST_NAME, ReleaseManifest, release_files, sha256_file


@dataclass(frozen=True)
class FileProblem:
    """One file that does not match the manifest."""

    path: str
    kind: str  # "missing" | "extra" | "altered" | "manifest"
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


def verify_release(folder: str | Path) -> list[FileProblem]:
    """Recompute every checksum of ``folder``; return the problems (empty when it verifies).

    Raises FileNotFoundError when the folder or its MANIFEST.json does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    manifest = ReleaseManifest.load(root)
    problems: list[FileProblem] = []
    if manifest.format != FORMAT:
        problems.append(
            FileProblem(MANIFEST_NAME, "manifest", f"format {manifest.format!r}, expected {FORMAT!r}")
        )
    listed: dict[str, object] = {}
    for entry in manifest.files:
        if entry.path in listed or entry.path == MANIFEST_NAME:
            problems.append(FileProblem(entry.path, "manifest", "listed twice or lists the manifest"))
        listed[entry.path] = entry
        full = root / entry.path
        if not full.is_file():
            problems.append(FileProblem(entry.path, "missing", "listed in the manifest, not on disk"))
            continue
        size = full.stat().st_size
        # Size first: it is free and names a truncated file without hashing it.
        if size != entry.bytes:
            problems.append(FileProblem(entry.path, "altered", f"{size} bytes, manifest says {entry.bytes}"))
            continue
        digest = sha256_file(full)
        if digest != entry.sha256:
            problems.append(
                FileProblem(
                    entry.path, "altered", f"sha256 {digest[:12]}…, manifest says {entry.sha256[:12]}…"
                )
            )
    for rel in release_files(root):
        if rel not in listed:
            problems.append(FileProblem(rel, "extra", "on disk, not listed in the manifest"))
    return sorted(problems, key=lambda p: (p.path, p.kind))
