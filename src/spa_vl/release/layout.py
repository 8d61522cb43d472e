"""The release folder's layout: the one module that names its folders and shard files.

Layout v2 (what ``spa-vl build`` writes)::

    data/<domain config>/<split>-NNNNN-of-MMMMM.parquet   each row once, under its harm domain
    data/unlabeled/<split>-NNNNN-of-MMMMM.parquet         rows whose domain is unknown

A domain config reads its own folder; ``default`` reads every folder, in taxonomy order with
``unlabeled`` last (so its rows are grouped by domain, in source order within each). Layout v1
(read only, e.g. a ``--previous`` release built before v2) kept every row in ``data/default/``
and a second copy under its domain's folder.

Everything that tells a release folder, lists its data files per config and split, names a
shard, or reads a split's columns goes through here; nothing else spells these paths. This
module imports nothing heavy (pyarrow only inside ``read_split``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from spa_vl.names import SPLITS
from spa_vl.taxonomy import CONFIGS, load_taxonomy

if TYPE_CHECKING:
    import pyarrow as pa

MANIFEST_NAME = "MANIFEST.json"
FORMAT = "spa-vl-release/2"
FORMAT_V1 = "spa-vl-release/1"
FORMATS = {FORMAT_V1: 1, FORMAT: 2}  # the formats this version reads, and their layout version
DATA = "data"
# The card's figures (spa_vl.card.plots draws them; the card links them)
CARD_IMAGES = {"sunburst": "images/taxonomy_sunburst.png", "splits": "images/rows_per_split_domain.png"}
UNLABELED = "unlabeled"  # the folder of rows whose domain is unknown (in `default` only)
DEFAULT = "default"

# ``train-00003-of-00008``: the shard numbering of the Hub, of datasets, and of our releases.
SHARD_STEM = re.compile(r"^(?P<name>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})$")
SHARD_SUFFIX = ".parquet"


# -- names ------------------------------------------------------------------------------------
def numbered_name(name: str, index: int, count: int, suffix: str = SHARD_SUFFIX) -> str:
    """``NAME-00003-of-00008.EXT``: shard ``index`` of ``count``."""
    return f"{name}-{index:05d}-of-{count:05d}{suffix}"


def numbered_pattern(name: str, suffix: str = SHARD_SUFFIX) -> str:
    """``NAME-NNNNN-of-MMMMM.EXT``: a shard set, in messages."""
    return f"{name}-NNNNN-of-MMMMM{suffix}"


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00003-of-00008.parquet``."""
    return numbered_name(split, index, count)


def pending_shard_name(split: str, index: int) -> str:
    """The hidden name a shard is written under until the shard count is known."""
    return f".{split}-{index:05d}{SHARD_SUFFIX}.tmp"


def shard_index(file: str | Path) -> tuple[str, int, int] | None:
    """(set name, index, count) of a file named ``NAME-NNNNN-of-MMMMM.EXT``, else None."""
    name = Path(file).name
    suffix = Path(name).suffix
    m = SHARD_STEM.match(name[: -len(suffix)] if suffix else name)
    return (m["name"], int(m["index"]), int(m["count"])) if m else None


def shard_split(file: str | Path) -> str | None:
    """The split of a release shard name (``train-00000-of-00001.parquet``), else None."""
    if not str(file).endswith(SHARD_SUFFIX):
        return None
    found = shard_index(file)
    return found[0] if found is not None and found[0] in SPLITS else None


@cache
def data_folders() -> tuple[str, ...]:
    """Every data folder a v2 release may hold, in the order ``default`` reads them."""
    tax = load_taxonomy()
    return (*(tax.config_of_domain(d) for d in tax.names("domain")), UNLABELED)


def folder_of_domain(domain: int) -> str:
    """The v2 folder of a row whose ``domain`` ClassLabel id is ``domain`` (-1: unknown)."""
    folders = data_folders()
    return folders[domain] if 0 <= domain < len(folders) - 1 else UNLABELED


def config_of_folder(folder: str, version: int = 2) -> str:
    """The narrowest config whose data holds the folder's rows (what MANIFEST.json records)."""
    return DEFAULT if version == 2 and folder == UNLABELED else folder


def folders_of_config(config: str, version: int = 2) -> tuple[str, ...]:
    """The data folders ``config`` reads."""
    if version == 2 and config == DEFAULT:
        return data_folders()
    return (config,)


def in_config(entry_config: str | None, config: str, version: int = 2) -> bool:
    """Whether a data file recorded under ``entry_config`` (MANIFEST.json's ``config``) is
    part of ``config``."""
    return entry_config == config or (version == 2 and config == DEFAULT)


def data_path(folder: str, name: str = "") -> str:
    """``data/<folder>/<name>`` as a relative POSIX path."""
    return f"{DATA}/{folder}/{name}" if name else f"{DATA}/{folder}"


def parse_data_path(relpath: str) -> tuple[str, str] | None:
    """(folder, split) of a release's shard path ``data/<folder>/<split>-NNNNN-of-MMMMM.parquet``."""
    parts = relpath.split("/")
    if len(parts) != 3 or parts[0] != DATA or not parts[1]:
        return None
    split = shard_split(parts[2])
    return (parts[1], split) if split is not None else None


def config_file_glob(config: str, version: int = 2) -> str:
    """One glob of every shard file of ``config`` (Croissant's ``includes``)."""
    folder = "*" if version == 2 and config == DEFAULT else config
    return data_path(folder, f"*{SHARD_SUFFIX}")


def config_data_files(config: str, splits: dict[str, list[str]]) -> list[dict]:
    """The card's ``data_files`` of ``config``: per split with files, the pattern of each
    folder holding some (``splits``: split -> folders, in reading order). One folder gives a
    string, several a list (datasets reads them in that order)."""
    out = []
    for split in SPLITS:
        folders = splits.get(split) or []
        if not folders:
            continue
        paths = [data_path(f, f"{split}-*") for f in folders]
        out.append({"split": split, "path": paths[0] if len(paths) == 1 else paths})
    return out


def format_version(format: str | None) -> int | None:
    return FORMATS.get(format or "")


# -- telling a release --------------------------------------------------------------------------
def manifest_format(root: str | Path) -> str | None:
    """The ``format`` of ``root/MANIFEST.json`` when it is a JSON object listing files, else None.
    A cheap look (no checks of its entries: ``ReleaseManifest.load`` does those)."""
    path = Path(root) / MANIFEST_NAME
    try:
        if path.is_symlink() or not path.is_file():
            return None
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), list):
        return None
    fmt = raw.get("format")
    return fmt if isinstance(fmt, str) else None


def has_release_manifest(root: str | Path) -> bool:
    """Whether ``root`` holds a MANIFEST.json of a release format this version knows: a folder
    spa-vl wrote (a build may replace it)."""
    return Path(root).is_dir() and manifest_format(root) in FORMATS


def is_release(root: str | Path) -> bool:
    """Whether ``root`` is (or was meant to be) a spa-vl release folder: a MANIFEST.json of a
    known release format, or, when the manifest is lost, shard files under ``data/<folder>/``.
    The one test every reader uses; a damaged release is still told as one, so that its
    readers name what is wrong with it."""
    root = Path(root)
    if not root.is_dir():
        return False
    if (root / MANIFEST_NAME).exists() or (root / MANIFEST_NAME).is_symlink():
        return True
    return any(_named_in(root / DATA / f) for f in (*data_folders(), DEFAULT))


def layout_version(root: str | Path) -> int:
    """2, or 1 for a release of format 1 (or, with no readable manifest, one that has a
    ``data/default/`` folder)."""
    version = format_version(manifest_format(root))
    if version is not None:
        return version
    return 1 if (Path(root) / DATA / DEFAULT).is_dir() else 2


def _named_in(folder: Path) -> list[Path]:
    """Entries of ``folder`` named ``<split>-NNNNN-of-MMMMM.parquet`` (regular or not), sorted."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [folder / n for n in names if shard_split(n) is not None]


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class ReleaseLayout:
    """The data files of one release folder, per config and split."""

    root: Path
    version: int = 2

    @classmethod
    def of(cls, root: str | Path) -> ReleaseLayout:
        return cls(Path(root), layout_version(root))

    def folders(self, config: str = DEFAULT) -> tuple[str, ...]:
        return folders_of_config(config, self.version)

    def all_folders(self) -> tuple[str, ...]:
        """Every folder of this layout version that may hold data."""
        return data_folders() if self.version == 2 else CONFIGS

    def named(self, config: str = DEFAULT, splits: Iterable[str] | None = None) -> list[Path]:
        """Entries of ``config``'s folders named as shards of ``splits`` (all by default),
        regular files or not, in reading order: split, then folder, then shard."""
        wanted = tuple(splits) if splits is not None else SPLITS
        entries = {f: _named_in(self.root / DATA / f) for f in self.folders(config)}
        return [p for s in wanted for f in self.folders(config) for p in entries[f] if shard_split(p) == s]

    def files(self, config: str = DEFAULT, split: str | None = None) -> list[Path]:
        """The regular shard files of ``config`` (one split, or all), in reading order."""
        return [p for p in self.named(config, None if split is None else (split,)) if _is_regular(p)]

    def split_files(self, config: str = DEFAULT) -> dict[str, list[Path]]:
        """split -> shard files of ``config``, for splits that have some."""
        out: dict[str, list[Path]] = {}
        for p in self.files(config):
            out.setdefault(shard_split(p) or "", []).append(p)
        return out

    def data_files(self) -> dict[str, dict[str, list[Path]]]:
        """config -> split -> shard files, for every config with files."""
        out = {}
        for config in CONFIGS:
            found = self.split_files(config)
            if found:
                out[config] = found
        return out

    def split_folders(self, config: str = DEFAULT) -> dict[str, list[str]]:
        """split -> the folders of ``config`` holding files of it, in reading order."""
        out: dict[str, list[str]] = {}
        for p in self.files(config):
            folders = out.setdefault(shard_split(p) or "", [])
            if p.parent.name not in folders:
                folders.append(p.parent.name)
        return out

    def all_named(self) -> list[Path]:
        """Every entry named as a shard, in every data folder of the layout, regular or not."""
        return [p for f in self.all_folders() for p in _named_in(self.root / DATA / f)]

    def strays(self) -> list[Path]:
        """Entries under ``data/`` that are not shards of a layout folder (other names, other
        folders, files right under ``data/``); hidden names are skipped."""
        data = self.root / DATA
        try:
            top = sorted(os.listdir(data))
        except OSError:
            return []
        known = set(self.all_folders())
        out = []
        for name in top:
            if name.startswith("."):
                continue
            path = data / name
            if name in known and path.is_dir() and not path.is_symlink():
                out += [
                    path / n
                    for n in sorted(os.listdir(path))
                    if not n.startswith(".") and shard_split(n) is None
                ]
            else:
                out.append(path)
        return out

    def read_split(
        self,
        split: str,
        columns: list[str] | None = None,
        config: str = DEFAULT,
        batch_size: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """The rows of one split of ``config`` as Arrow batches of ``columns``, in reading order."""
        import pyarrow.parquet as pq

        for path in self.files(config, split):
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)
