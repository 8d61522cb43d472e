"""``spa-vl build``: raw source -> validated, typed, script-free release folder."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from spa_vl.about import DATA_VERSION, __version__
from spa_vl.errors import DataError, UsageError
from spa_vl.outputs import check_output_dir, check_output_file, resolved
from spa_vl.release import layout
from spa_vl.release.manifest import FORMAT, MANIFEST_NAME, ReleaseManifest, release_files
from spa_vl.release.parquet_settings import DEFAULT_MAX_SHARD_SIZE, ParquetSettings, parse_size
from spa_vl.release.staging import StagedFolder, aside_file, check_not_current_folder
from spa_vl.release.stats import ReleaseStats, is_sample_answer
from spa_vl.release.verify import verify_release
from spa_vl.release.writer import WrittenData, write_data
from spa_vl.sources import open_source
from spa_vl.validate import Quarantine, ValidationOptions, ValidationReport, validate_batches, validate_rows

if TYPE_CHECKING:
    from spa_vl.sources import Source, SourceRow

CHANGELOG = "CHANGELOG.md"
# The card is a step of the build: given the staged folder and the figures gathered while
# writing, it writes its files there (reading no data file) and returns their relative paths.
CardStep = Callable[[Path, ReleaseStats], list[str]]


@dataclass
class BuildResult:
    out: Path
    manifest: ReleaseManifest
    report: ValidationReport


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
    if out_r.is_dir() and layout.has_release_manifest(out_r):
        foreign = _unlisted_files(out_r)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise UsageError(
                f"--out {out}: holds files that are not part of the release (not in its "
                f"MANIFEST.json): {shown}; the build replaces the whole folder, so move them "
                "away or choose another --out"
            )
    out_r = check_output_dir(
        out,
        option="--out",
        inputs=inputs,
        accept=layout.has_release_manifest,
        what="spa-vl release (MANIFEST.json)",
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
    if not layout.has_release_manifest(Path(previous)):
        raise UsageError(
            f"--previous {previous}: not a spa-vl release (no readable {MANIFEST_NAME} of format "
            f"{FORMAT}); the changelog needs the release it follows"
        )


def _verified(folder: Path) -> None:
    """Refuse to swap in a release that does not match its own manifest: every listed file
    there, of its size, and nothing else (the checksums were taken from the bytes as they were
    written; reading every file again would double the build's I/O)."""
    problems = verify_release(folder, hashes=False)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        raise DataError(f"the new release does not verify ({listed}); the previous one is unchanged")


def build_release(
    src: str | Path,
    out: str | Path = "spa_vl",
    version: str = DATA_VERSION,
    format: str = "auto",
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    quarantine: str | Path | None = None,
    previous: str | Path | None = None,
    options: ValidationOptions | None = None,
    progress: bool = False,
    fast: bool = True,
    settings: ParquetSettings | None = None,
    card: CardStep | None = None,
) -> BuildResult:
    """Validate ``src`` and write the release folder ``out``; rejected rows go to ``quarantine``.
    ``fast``: use the column-batch path where the source offers it (``spa_vl.validate.batches``).
    ``max_shard_size`` is parsed as datasets parses it (``500MB``: 500,000,000 bytes; ``1GiB``);
    ``settings`` the parquet settings (``ParquetSettings()`` by default). ``card``: the card
    step; by default ``spa_vl.card.render``'s card and figures.

    Every output path is checked first (``check_build_paths``). The release is written into a
    staging folder beside ``out``, verified, and swapped in (``spa_vl.release.staging``); the
    quarantine file is written aside and renamed into place after the swap. A failed or
    interrupted build leaves ``out`` and the quarantine file as they were."""
    paths = check_build_paths(src, out, quarantine, previous)
    settings = replace(settings or ParquetSettings(), max_shard_size=parse_size(max_shard_size))
    card = card or _default_card
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
                settings,
                q_aside,
                quarantine,
                previous,
                options,
                progress,
                fast,
                card,
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


def _default_card(out: Path, stats: ReleaseStats) -> list[str]:
    """``spa_vl.card.render``'s card and its figures, from the counts gathered while writing."""
    from spa_vl.card import render

    return render.render_build_card(out, stats)


def _source_relative(file: str, src: str | Path) -> str:
    root = resolved(src)
    root = root if root.is_dir() else root.parent
    try:
        return resolved(file).relative_to(root).as_posix()
    except ValueError:
        return file


def _manifest(
    version: str,
    source: Source,
    report: ValidationReport,
    settings: ParquetSettings,
    written: WrittenData,
    out: Path,
    src: str | Path,
) -> ReleaseManifest:
    """The manifest of the data just written: version, source, counts, parquet settings, and
    each data file with the checksum taken as it was written."""
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
        parquet=settings.to_dict(),
    )
    if report.partial:
        # An --allow-partial build says in the release what its source lacked; paths relative
        # to the source, so the manifest does not depend on where the source lay.
        manifest.counts["partial"] = [
            {"file": _source_relative(p["file"], src), "problem": p["problem"]} for p in report.partial
        ]
    for f in written.files:
        manifest.add_entry(
            f.path.relative_to(out).as_posix(),
            f.sha256,
            f.size,
            rows=f.rows,
            config=layout.config_of_folder(f.folder),
            split=f.split,
        )
    return manifest


def _write_release(
    src: str | Path,
    out: Path,
    version: str,
    format: str,
    settings: ParquetSettings,
    quarantine_file: Path | None,
    quarantine: str | Path | None,
    previous: str | Path | None,
    options: ValidationOptions | None,
    progress: bool,
    fast: bool,
    card: CardStep | None,
) -> tuple[ReleaseManifest, ValidationReport]:
    """Write the whole release into the (new, empty) folder ``out``: the data (each file hashed
    and counted as it is written), the changelog, the card from the writer's figures, and the
    manifest. No data file is read back."""
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
        written = write_data(accepted, out, settings, is_sample_answer=is_sample_answer)
    # --previous may be --out itself: the old release is still in place while this one is
    # written beside it, so the diff reads the real previous data.
    (out / CHANGELOG).write_text(
        changelog_text(version, Path(previous) if previous else None, out), encoding="utf-8"
    )
    manifest = _manifest(version, source, report, settings, written, out, src)
    manifest.set_file(out, CHANGELOG)
    manifest.write(out)  # the card reads the version, source and counts from it
    for rel in card(out, written.stats):
        manifest.set_file(out, rel)
    # The folder is new: everything in it was written by this build; anything the card step
    # wrote without naming it is listed too, so the manifest lists every file.
    listed = {f.path for f in manifest.files}
    for rel in release_files(out):
        if rel not in listed:
            manifest.set_file(out, rel)
    manifest.write(out)
    return manifest, report
