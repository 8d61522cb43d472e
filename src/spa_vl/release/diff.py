"""Compare two release folders: per config and split, rows added, removed and changed, and the
label distribution, rendered as text, JSON or a CHANGELOG entry.

Rows are matched by ``id``; a row "changed" when the hash of all its other columns (image bytes
included) differs. Parquet is read batch by batch, so a full SPA-VL release fits in memory.
Each data file is read once: a config's rows are the union of its data folders'
(``spa_vl.release.layout``; a release of layout v1, with its ``data/default/`` copy, diffs
against a v2 one config by config). The new folder needs no MANIFEST.json yet: the builder calls
:func:`changelog_entry` before it writes the manifest, so data files are then found by their
layout names.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from spa_vl.release import layout
from spa_vl.release.manifest import MANIFEST_NAME, ReleaseManifest
from spa_vl.taxonomy import CONFIGS

LABEL_COLUMNS = ("domain", "category", "subcategory", "eval_set")
UNKNOWN = "(unknown)"
_BATCH = 512


@dataclass
class SplitDiff:
    config: str
    split: str
    old_rows: int
    new_rows: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    # level -> label -> (old count, new count); only labels whose count changed
    labels: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.labels)


@dataclass
class ReleaseDiff:
    old_version: str | None
    new_version: str | None
    old_fingerprint: str | None
    new_fingerprint: str | None
    splits: list[SplitDiff]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _SplitData:
    hashes: dict[str, bytes]
    labels: dict[str, Counter]


def diff_releases(old_dir: str | Path, new_dir: str | Path, *, new_manifest: bool = True) -> ReleaseDiff:
    """Diff two release folders (the old one needs its manifest, the new one need not).

    ``new_manifest=False`` ignores a MANIFEST.json in ``new_dir``: mid-build it may be a stale
    one from an earlier build into the same folder.
    """
    old, new = Path(old_dir), Path(new_dir)
    old_manifest = ReleaseManifest.load(old)
    use_new = new_manifest and (new / MANIFEST_NAME).is_file()
    new_manifest_ = ReleaseManifest.load(new) if use_new else None
    old_files = _data_files(old, old_manifest.layout_version)
    new_version = new_manifest_.layout_version if new_manifest_ else layout.layout_version(new)
    new_files = _data_files(new, new_version, use_manifest=use_new)
    if not new_files:
        raise FileNotFoundError(f"{new}: no data/<folder>/<split>-*.parquet; not a release folder")
    old_data, new_data = _read_folders(old, old_files), _read_folders(new, new_files)
    splits = []
    keys = {
        (config, split)
        for config in CONFIGS
        for side, version in ((old_files, old_manifest.layout_version), (new_files, new_version))
        for f, split in side
        if f in layout.folders_of_config(config, version)
    }
    for config, split in sorted(keys, key=_split_order):
        a = _union(old_data, layout.folders_of_config(config, old_manifest.layout_version), split)
        b = _union(new_data, layout.folders_of_config(config, new_version), split)
        splits.append(_compare((config, split), a, b))
    return ReleaseDiff(
        old_manifest.version,
        new_manifest_.version if new_manifest_ else None,
        old_manifest.source.get("fingerprint"),
        new_manifest_.source.get("fingerprint") if new_manifest_ else None,
        splits,
    )


def changelog_entry(old_dir: str | Path, new_dir: str | Path, version: str) -> str:
    """A CHANGELOG.md entry (``## vX.Y.Z`` and what changed since ``old_dir``).

    Called by the builder once the data files of ``new_dir`` are written and before its
    manifest is, so the new side is read from its file names only.
    """
    return render_changelog(diff_releases(old_dir, new_dir, new_manifest=False), version)


# -- reading ------------------------------------------------------------------------------------
def _data_files(folder: Path, version: int, use_manifest: bool = True) -> dict[tuple[str, str], list[str]]:
    """(data folder, split) -> relative parquet paths, from the manifest or else the layout."""
    out: dict[tuple[str, str], list[str]] = {}
    if use_manifest and (folder / MANIFEST_NAME).is_file():
        rels = [f.path for f in ReleaseManifest.load(folder).data_files()]
    else:
        found = layout.ReleaseLayout(folder, version)
        rels = [p.relative_to(folder).as_posix() for p in found.files()]
        if version == 1:  # v1's domain folders hold copies of default's rows: read them too
            rels = [p.relative_to(folder).as_posix() for c in CONFIGS for p in found.files(c)]
    for rel in rels:
        key = layout.parse_data_path(rel)
        if key is not None:
            out.setdefault(key, []).append(rel)
    return out


def _read_folders(folder: Path, files: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], _SplitData]:
    return {key: _read_split(folder, paths) for key, paths in files.items()}


def _union(data: dict[tuple[str, str], _SplitData], folders: tuple[str, ...], split: str) -> _SplitData:
    """The rows of ``split`` in ``folders`` (a config's), as one."""
    parts = [data[(f, split)] for f in folders if (f, split) in data]
    if len(parts) == 1:
        return parts[0]
    merged = _SplitData({}, {level: Counter() for level in LABEL_COLUMNS})
    for part in parts:
        merged.hashes.update(part.hashes)
        for level in LABEL_COLUMNS:
            merged.labels[level].update(part.labels[level])
    return merged


def _read_split(folder: Path, paths: list[str]) -> _SplitData:
    hashes: dict[str, bytes] = {}
    labels: dict[str, Counter] = {level: Counter() for level in LABEL_COLUMNS}
    for rel in paths:
        pf = pq.ParquetFile(folder / rel)
        names = _class_names(pf.schema_arrow)
        columns = sorted(c for c in pf.schema_arrow.names if c != "id")
        for batch in pf.iter_batches(batch_size=_BATCH):
            table = batch.to_pydict()
            for i, row_id in enumerate(table["id"]):
                hashes[row_id] = _row_hash({c: table[c][i] for c in columns})
                for level in LABEL_COLUMNS:
                    if level in table:
                        labels[level][_label(names.get(level), table[level][i])] += 1
    return _SplitData(hashes, labels)


def _class_names(schema: Any) -> dict[str, list[str]]:
    """ClassLabel names per column, from the features datasets records in the parquet schema
    (its ``huggingface`` metadata); none for a file without them."""
    import datasets  # here: `spa-vl diff --help` need not load it

    features = datasets.Features.from_arrow_schema(schema)
    return {k: f.names for k, f in features.items() if isinstance(f, datasets.ClassLabel)}


def _label(names: list[str] | None, value: Any) -> str:
    if value is None or value == -1:
        return UNKNOWN
    if names is not None and isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    return str(value)


def _row_hash(row: dict[str, Any]) -> bytes:
    h = hashlib.sha256()
    for name, value in row.items():
        h.update(name.encode() + b"\0")
        _feed(h, value)
    return h.digest()[:16]


def _feed(h: Any, value: Any) -> None:
    # Length-prefixed and typed, so ("ab", "c") and ("a", "bc") never hash alike.
    if isinstance(value, dict):
        h.update(b"{%d" % len(value))
        for k in sorted(value):
            h.update(k.encode() + b"=")
            _feed(h, value[k])
    elif isinstance(value, bytes):
        h.update(b"b%d:" % len(value) + value)
    else:
        data = json.dumps(value).encode()
        h.update(b"j%d:" % len(data) + data)


def _compare(key: tuple[str, str], a: _SplitData, b: _SplitData) -> SplitDiff:
    config, split = key
    diff = SplitDiff(config, split, len(a.hashes), len(b.hashes))
    diff.added = sorted(set(b.hashes) - set(a.hashes))
    diff.removed = sorted(set(a.hashes) - set(b.hashes))
    diff.changed = sorted(i for i in set(a.hashes) & set(b.hashes) if a.hashes[i] != b.hashes[i])
    for level in LABEL_COLUMNS:
        old, new = a.labels[level], b.labels[level]
        if set(old) | set(new) <= {UNKNOWN}:
            continue  # a column this split does not use (eval_set outside test)
        moved = {k: (old[k], new[k]) for k in sorted(set(old) | set(new)) if old[k] != new[k]}
        if moved:
            diff.labels[level] = moved
    return diff


def _split_order(key: tuple[str, str]) -> tuple:
    config, split = key
    order = {"train": 0, "validation": 1, "test": 2}
    return (config != "default", config, order.get(split, 3), split)


# -- rendering ----------------------------------------------------------------------------------
def _label_lines(diff: ReleaseDiff) -> list[str]:
    # Domain configs are slices of `default`: their label shifts would repeat default's.
    splits = [s for s in diff.splits if s.config == "default"] or diff.splits
    lines = []
    for s in splits:
        for level, moved in s.labels.items():
            parts = [f"{name} {o} → {n} ({n - o:+d})" for name, (o, n) in moved.items()]
            lines.append(f"- `{s.config}/{s.split}` {level}: " + "; ".join(parts))
    return lines


def _hash_name(fingerprint: str) -> str:
    """The hash a source fingerprint was taken with: ``name:hex``, or a bare sha256 (older releases)."""
    return fingerprint.split(":", 1)[0] if ":" in fingerprint else "sha256"


def render_changelog(diff: ReleaseDiff, version: str | None) -> str:
    """Markdown: a heading, a table of row changes per config/split, then label shifts."""
    version = (version or diff.new_version or "?").removeprefix("v")
    old = f"v{diff.old_version}" if diff.old_version else "the previous release"
    lines = [f"## v{version}", "", f"Compared with {old}."]
    if diff.old_fingerprint and diff.new_fingerprint:
        same = diff.old_fingerprint == diff.new_fingerprint
        src = "unchanged" if same else f"`{diff.old_fingerprint}` → `{diff.new_fingerprint}`"
        if not same and _hash_name(diff.old_fingerprint) != _hash_name(diff.new_fingerprint):
            src = "not comparable (taken with another hash)"
        lines.append(f"Source fingerprint: {src}.")
    lines.append("")
    changed = [s for s in diff.splits if s.added or s.removed or s.changed]
    if not changed:
        lines.append("No rows added, removed or changed.")
    else:
        lines += [
            "| config | split | rows | added | removed | changed |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s.config} | {s.split} | {s.old_rows} → {s.new_rows} | {len(s.added)} "
            f"| {len(s.removed)} | {len(s.changed)} |"
            for s in changed
        ]
    labels = _label_lines(diff)
    if labels:
        lines += ["", "Label distribution changes:", "", *labels]
    return "\n".join(lines) + "\n"


def render_text(diff: ReleaseDiff, max_ids: int = 5) -> str:
    """Plain text for the terminal, with the first few ids of each kind."""
    lines = [f"v{diff.old_version} → v{diff.new_version or '?'}"]
    for s in diff.splits:
        head = (
            f"{s.config}/{s.split}: {s.old_rows} → {s.new_rows} rows, +{len(s.added)} "
            f"-{len(s.removed)} ~{len(s.changed)}"
        )
        lines.append(head)
        for sign, ids in (("+", s.added), ("-", s.removed), ("~", s.changed)):
            if ids:
                more = f" (+{len(ids) - max_ids} more)" if len(ids) > max_ids else ""
                lines.append(f"  {sign} {', '.join(ids[:max_ids])}{more}")
    labels = _label_lines(diff)
    if labels:
        lines += ["label distribution changes:", *labels]
    return "\n".join(lines) + "\n"
