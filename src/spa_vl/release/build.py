"""``spa-vl build``: raw source -> validated, typed, script-free release folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from spa_vl import __version__
from spa_vl.builder import CITATION, DATA_VERSION, DESCRIPTION, HOMEPAGE, LICENSE
from spa_vl.fastpath import validate_batches
from spa_vl.release.manifest import ReleaseManifest, release_files
from spa_vl.release.metadata import configs_yaml, dataset_info_yaml, write_card
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
    ``fast``: use the column-batch path where the source offers it (``spa_vl.fastpath``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = open_source(src, format)
    report = ValidationReport(
        source=str(src), format=source.format, quarantine=str(quarantine) if quarantine else None
    )
    with Quarantine(quarantine) as q, tqdm(desc="build", unit=" rows", disable=not progress) as bar:
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
    data = {
        path.relative_to(out).as_posix(): (config, split, rows) for config, split, path, rows in written.files
    }
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
    return BuildResult(out, manifest, report)
