"""``spa-vl build``: raw source -> validated, typed, script-free release folder."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from spa_vl import __version__
from spa_vl.builder import CITATION, DATA_VERSION, DESCRIPTION, HOMEPAGE, LICENSE
from spa_vl.errors import DataError, UsageError
from spa_vl.fastpath import validate_batches
from spa_vl.outputs import check_output_dir, check_output_file, resolved
from spa_vl.release.manifest import FORMAT, MANIFEST_NAME, ReleaseManifest, release_files
from spa_vl.release.metadata import configs_yaml, dataset_info_yaml, write_card
from spa_vl.release.staging import StagedFolder, aside_file, check_not_current_folder
from spa_vl.release.verify import verify_release
from spa_vl.release.writer import DEFAULT_MAX_SHARD_SIZE, write_data
from spa_vl.sources import open_source
from spa_vl.validate import Quarantine, ValidationOptions, ValidationReport, validate_rows

if TYPE_CHECKING:
    from spa_vl.sources import SourceRow

CHANGELOG = "CHANGELOG.md"


@dataclass
class BuildResult:
    out: Path
    manifest: ReleaseManifest
    report: ValidationReport


def base_metadata() -> dict:
    """The card YAML that does not depend on the data."""
    return {
        "license": LICENSE,
        "language": ["en"],
        "pretty_name": "SPA-VL",
        "task_categories": ["visual-question-answering", "image-text-to-text"],
        "tags": ["safety", "preference", "dpo", "rlhf", "vision-language", "harmlessness"],
    }


def minimal_body(version: str) -> str:
    return (
        f"# SPA-VL (release {version})\n\n{DESCRIPTION}\n\nHomepage: {HOMEPAGE}\n\n"
        "Run `spa-vl card DIR` for the full dataset card.\n\n"
        f"## Citation\n\n```bibtex\n{CITATION}```\n"
    )


def changelog_text(version: str, previous: Path | None, out: Path) -> str:
    if previous is not None:
        from spa_vl.release.diff import changelog_entry

        old = (previous / CHANGELOG).read_text(encoding="utf-8") if (previous / CHANGELOG).exists() else ""
        entry = changelog_entry(previous, out, version)
        header, _, rest = old.partition("\n## ")
        if rest:
            return f"{header.rstrip()}\n\n{entry.rstrip()}\n\n## {rest}"
        return f"# Changelog\n\n{entry.rstrip()}\n"
    return f"# Changelog\n\n## v{version}\n\n- First release built by spa-vl {__version__}.\n"


def _counted(rows: Iterable[SourceRow], bar: tqdm) -> Iterator[SourceRow]:
    for row in rows:
        bar.update(1)
        yield row


def is_release(folder: Path) -> bool:
    """Whether ``folder`` holds a MANIFEST.json of the spa-vl release format."""
    try:
        raw = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("format") == FORMAT and isinstance(raw.get("files"), list)


def _unlisted_files(folder: Path) -> list[str]:
    """Files of an existing release that its manifest does not list (the user's, not ours)."""
    raw = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    listed = {f.get("path") for f in raw["files"] if isinstance(f, dict)}
    return [rel for rel in release_files(folder) if rel not in listed]


@dataclass(frozen=True)
class BuildPaths:
    """The resolved paths of one build, checked before anything is read."""

    src: Path
    out: Path
    quarantine: Path | None
    previous: Path | None


def check_build_paths(
    src: str | Path,
    out: str | Path,
    quarantine: str | Path | None = None,
    previous: str | Path | None = None,
) -> BuildPaths:
    """Refuse (UsageError) any output that could destroy what the build did not write.

    ``out`` must be new, empty, or an existing release whose every file its manifest lists (the
    build replaces the folder whole); not the source, inside it or containing it, nor the current
    folder (the swap would leave a shell in a removed folder). ``quarantine`` is a file, not an
    input and not inside ``out``. ``previous`` is only read; it may be ``out`` itself."""
    inputs = [src] + ([previous] if previous else [])
    out_r = resolved(out)
    check_not_current_folder(out_r, out, "--out")
    if previous and resolved(previous) == out_r:
        inputs = [src]  # read before the swap, then replaced: allowed
    if out_r.is_dir() and is_release(out_r):
        foreign = _unlisted_files(out_r)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise UsageError(
                f"--out {out}: holds files that are not part of the release (not in its "
                f"MANIFEST.json): {shown}; the build replaces the whole folder, so move them "
                "away or choose another --out"
            )
    out_r = check_output_dir(
        out, option="--out", inputs=inputs, accept=is_release, what="spa-vl release (MANIFEST.json)"
    )
    if out_r.exists() and not os.access(out_r.parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"--out {out}: cannot write in {out_r.parent} (permission denied); the release is "
            "written beside --out first and then swapped in"
        )
    q = None
    if quarantine is not None:
        q = check_output_file(quarantine, option="--quarantine", inputs=inputs)
        if q == out_r or out_r in q.parents:
            raise UsageError(
                f"--quarantine {quarantine}: is inside --out {out}, which the build replaces whole; "
                "choose a path outside it"
            )
    prev = None
    if previous is not None:
        prev = resolved(previous)
        if prev != out_r and out_r in prev.parents:
            raise UsageError(f"--previous {previous}: is inside --out {out}, which the build replaces")
    return BuildPaths(resolved(src), out_r, q, prev)


def _check_previous(previous: str | Path) -> None:
    if not Path(previous).is_dir():
        raise UsageError(f"--previous {previous}: no such release folder")
    if not is_release(Path(previous)):
        raise UsageError(
            f"--previous {previous}: not a spa-vl release (no readable {MANIFEST_NAME} of format "
            f"{FORMAT}); the changelog needs the release it follows"
        )


def _verified(folder: Path) -> None:
    """Refuse to swap in a release that does not match its own manifest."""
    problems = verify_release(folder)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        raise DataError(f"the new release does not verify ({listed}); the previous one is unchanged")


def build_release(
    src: str | Path,
    out: str | Path = "spa_vl",
    version: str = DATA_VERSION,
    format: str = "auto",
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
    quarantine: str | Path | None = None,
    previous: str | Path | None = None,
    options: ValidationOptions | None = None,
    progress: bool = False,
    fast: bool = True,
) -> BuildResult:
    """Validate ``src`` and write the release folder ``out``; rejected rows go to ``quarantine``.
    ``fast``: use the column-batch path where the source offers it (``spa_vl.fastpath``).

    Every output path is checked first (``check_build_paths``). The release is written into a
    staging folder beside ``out``, verified, and swapped in (``spa_vl.release.staging``); the
    quarantine file is written aside and renamed into place after the swap. A failed or
    interrupted build leaves ``out`` and the quarantine file as they were."""
    paths = check_build_paths(src, out, quarantine, previous)
    with StagedFolder(paths.out, "build", "--out") as stage:
        if previous is not None:
            _check_previous(previous)  # after a crashed swap was undone: it may be --out
        q_aside = aside_file(paths.quarantine) if paths.quarantine else None
        try:
            manifest, report = _write_release(
                src,
                stage.path,
                version,
                format,
                max_shard_size,
                q_aside,
                quarantine,
                previous,
                options,
                progress,
                fast,
            )
            stage.commit(_verified)
            if q_aside is not None and paths.quarantine is not None:
                os.replace(q_aside, paths.quarantine)
        except OSError as exc:
            # Writing failed (full disk, quota, ...): say so with --out, and that nothing was lost.
            ours = [str(stage.path), str(q_aside or stage.path)]
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
            if full or (exc.filename and any(str(exc.filename).startswith(w) for w in ours)):
                where = f": {exc.filename}" if exc.filename else ""
                raise UsageError(
                    f"--out {out}: cannot write the release ({exc.strerror or exc}{where}); "
                    "the previous release is unchanged"
                ) from exc
            raise
        finally:
            if q_aside is not None:
                q_aside.unlink(missing_ok=True)
    return BuildResult(Path(out), manifest, report)


def _source_relative(file: str, src: str | Path) -> str:
    root = resolved(src)
    root = root if root.is_dir() else root.parent
    try:
        return resolved(file).relative_to(root).as_posix()
    except ValueError:
        return file


def _write_release(
    src: str | Path,
    out: Path,
    version: str,
    format: str,
    max_shard_size: int,
    quarantine_file: Path | None,
    quarantine: str | Path | None,
    previous: str | Path | None,
    options: ValidationOptions | None,
    progress: bool,
    fast: bool,
) -> tuple[ReleaseManifest, ValidationReport]:
    """Write the whole release into the (new, empty) folder ``out``."""
    allow_partial = bool(options and options.allow_partial)
    source = open_source(src, format, allow_partial=allow_partial)  # DataError if incomplete
    report = ValidationReport(
        source=str(src), format=source.format, quarantine=str(quarantine) if quarantine else None
    )
    report.partial = [p.to_dict() for p in source.partial]
    report.ignored = [p.to_dict() for p in source.ignored()]
    with Quarantine(quarantine_file) as q, tqdm(desc="build", unit=" rows", disable=not progress) as bar:
        if fast and hasattr(source, "batches"):
            # Column batches checked and written with Arrow kernels; the same files as below.
            accepted = validate_batches(source.batches(), report, options, q, progress=bar)
        else:
            accepted = validate_rows(_counted(source.rows(), bar), report, options, q)
        written = write_data(accepted, out, max_shard_size)
    meta = base_metadata()
    meta["configs"] = configs_yaml(out)
    meta["dataset_info"] = dataset_info_yaml(out, written.nbytes)
    write_card(out / "README.md", meta, minimal_body(version))
    # --previous may be --out itself: the old release is still in place while this one is
    # written beside it, so the diff reads the real previous data.
    (out / CHANGELOG).write_text(
        changelog_text(version, Path(previous) if previous else None, out), encoding="utf-8"
    )
    manifest = ReleaseManifest(
        version=version,
        package_version=__version__,
        source={"format": source.format, "fingerprint": source.fingerprint()},
        counts={
            "read": report.read,
            "accepted": report.accepted,
            "quarantined": report.quarantined,
            "splits": {k: vars(v) for k, v in report.splits.items()},
            "problems": dict(sorted(report.problems.items())),
        },
    )
    if report.partial:
        # An --allow-partial build says in the release what its source lacked; paths relative
        # to the source, so the manifest does not depend on where the source lay.
        manifest.counts["partial"] = [
            {"file": _source_relative(p["file"], src), "problem": p["problem"]} for p in report.partial
        ]
    data = {
        path.relative_to(out).as_posix(): (config, split, rows) for config, split, path, rows in written.files
    }
    # The folder is new: everything in it was written by this build, so listing it lists
    # only our files.
    for rel in release_files(out):
        if rel in data:
            config, split, rows = data[rel]
            manifest.set_file(out, rel, rows=rows, config=config, split=split)
        else:
            manifest.set_file(out, rel)
    manifest.write(out)
    # The full card (README.md body, plots, croissant.json) is rendered from the written data.
    from spa_vl.card.render import render_release_card

    manifest = render_release_card(out)
    return manifest, report
