"""Compare two release folders: per config and split, rows added, removed and changed, and the
label distribution, rendered as text, JSON or a CHANGELOG entry.

Rows are matched by ``id``; a row "changed" when the hash of all its other columns (image bytes
included) differs. Parquet is read batch by batch, so a full SPA-VL release fits in memory.
The new folder needs no MANIFEST.json yet: the builder calls :func:`changelog_entry` before it
writes the manifest, so data files are then found by their contract names.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from spa_vl.release.manifest import MANIFEST_NAME, ReleaseManifest

LABEL_COLUMNS = ("domain", "category", "subcategory", "eval_set")
UNKNOWN = "(unknown)"
_SHARD = re.compile(r"^data/(?P<config>[^/]+)/(?P<split>[^/]+?)-\d{5}-of-\d{5}\.parquet$")
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
    old_files, new_files = _data_files(old), _data_files(new, use_manifest=use_new)
    if not new_files:
        raise FileNotFoundError(f"{new}: no data/<config>/<split>-*.parquet; not a release folder")
    splits = []
    for key in sorted(set(old_files) | set(new_files), key=_split_order):
        a = _read_split(old, old_files.get(key, []))
        b = _read_split(new, new_files.get(key, []))
        splits.append(_compare(key, a, b))
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
def _data_files(folder: Path, use_manifest: bool = True) -> dict[tuple[str, str], list[str]]:
    """(config, split) -> relative parquet paths, from the manifest or else the file names."""
    out: dict[tuple[str, str], list[str]] = {}
    if use_manifest and (folder / MANIFEST_NAME).is_file():
        for f in ReleaseManifest.load(folder).data_files():
            out.setdefault((f.config or "default", f.split or "train"), []).append(f.path)
        return out
    for path in sorted(folder.glob("data/*/*.parquet")):
        rel = path.relative_to(folder).as_posix()
        if m := _SHARD.match(rel):
            out.setdefault((m["config"], m["split"]), []).append(rel)
    return out


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
    """ClassLabel names per column, from the ``huggingface`` parquet metadata that datasets writes."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    feats = json.loads(raw).get("info", {}).get("features", {})
    return {k: v["names"] for k, v in feats.items() if isinstance(v, dict) and "names" in v}


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


def render_changelog(diff: ReleaseDiff, version: str | None) -> str:
    """Markdown: a heading, a table of row changes per config/split, then label shifts."""
    version = (version or diff.new_version or "?").removeprefix("v")
    old = f"v{diff.old_version}" if diff.old_version else "the previous release"
    lines = [f"## v{version}", "", f"Compared with {old}."]
    if diff.old_fingerprint and diff.new_fingerprint:
        same = diff.old_fingerprint == diff.new_fingerprint
        src = "unchanged" if same else f"`{diff.old_fingerprint}` → `{diff.new_fingerprint}`"
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
