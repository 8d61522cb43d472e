"""``spa_vl.load``: one call for a release folder, a raw source, or a Hub repository.

Every expected failure is a ``LoadError`` (a ``SpaVLError`` and a ``ValueError``) worded as the
CLI words it: a local path that does not exist says so (it is never tried on the Hub), and a Hub
that cannot be reached says what was being downloaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import datasets

from spa_vl.about import UPSTREAM_REPO  # the authors' Hub dataset, in the raw Hub layout
from spa_vl.errors import SpaVLError, is_network_failure, network_message
from spa_vl.names import SPLITS, is_repo_id
from spa_vl.sources import SourceError, detect_format, is_release, open_source
from spa_vl.taxonomy import CONFIGS

_SPLIT = re.compile(r"^(?P<name>[a-z]+)(\[.*\])?$")
# What of the upstream repository the raw Hub reader needs (not train.zip or meta_files/).
UPSTREAM_PATTERNS = ["data/*.parquet", "validation/*.parquet", "test/*.parquet", "README.md"]


_FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".zip", ".arrow", ".csv")


class LoadError(SpaVLError, ValueError):
    """Unknown config, split or source, or a Hub that cannot be reached; the message lists what
    exists or says what was being fetched. Exit code 2 in the CLI (usage or environment)."""

    exit_code = 2


def looks_like_path(source: str | Path) -> bool:
    """True when ``source`` is meant as a local path rather than a Hub id ``ORG/NAME``:
    a ``Path``, or text that starts with ``.``, ``/`` or ``~``, holds a backslash, more than
    one ``/``, or ends like a data file; or anything that is not a valid repo id."""
    if isinstance(source, os.PathLike):
        return True
    text = str(source)
    return (
        text.startswith((".", "/", "~"))
        or "\\" in text
        or text.count("/") != 1
        or text.lower().endswith(_FILE_SUFFIXES)
        or not is_repo_id(text)
    )


def _check_args(config: str, split: str | None) -> None:
    if config not in CONFIGS:
        raise LoadError(f"unknown config {config!r}; configs: {', '.join(CONFIGS)}")
    if split is not None:
        for part in split.split("+"):
            m = _SPLIT.match(part.strip())
            if not m or m["name"] not in SPLITS:
                raise LoadError(
                    f"unknown split {split!r}; splits: {', '.join(SPLITS)} (slices like 'train[:10]' work)"
                )


def load(
    config: str = "default",
    split: str | None = None,
    *,
    source: str | Path | None = None,
    revision: str | None = None,
    streaming: bool = False,
    cache_dir: str | None = None,
):
    """Load SPA-VL with the unified Features.

    ``source`` is a release folder, a raw source (Hub layout, RLHF JSON, JSONL: built through
    the SpaVL builder and cached), or a Hub repo id (a spa-vl release, pinned with
    ``revision="vX.Y.Z"``). Without ``source``, the authors' repository ``sqrti/SPA-VL`` is
    downloaded and built. Returns a DatasetDict, or a Dataset when ``split`` is given
    (Iterable versions with ``streaming=True``).
    """
    _check_args(config, split)
    if source is None:
        source = UPSTREAM_REPO
    path = Path(source)
    if path.exists():
        if is_release(path):
            return _load_release(path, config, split, streaming, cache_dir)
        try:
            detect_format(path)
        except SourceError as exc:
            raise LoadError(f"{exc}") from None
        return _load_raw(path, config, split, streaming, cache_dir)
    if looks_like_path(source):
        raise LoadError(
            f"source {str(source)!r}: no such folder or file (looked in {Path.cwd()}); it is "
            "neither an existing folder or file nor a Hub repo id (ORG/NAME): give a release "
            "folder, a raw SPA-VL source, or a repo id"
        )
    source = str(source)
    if source == UPSTREAM_REPO:
        from huggingface_hub import snapshot_download

        what = f"the authors' raw data {UPSTREAM_REPO}" + (f" at {revision}" if revision else "")
        try:
            local = snapshot_download(
                source,
                repo_type="dataset",
                revision=revision,
                allow_patterns=UPSTREAM_PATTERNS,
                cache_dir=cache_dir,
            )
        except Exception as exc:
            if is_network_failure(exc):
                raise LoadError(
                    f"tried to download {UPSTREAM_REPO} (no source given): "
                    + network_message(what, exc)
                    + "; give source= a local copy or a release folder"
                ) from exc
            raise
        return _load_raw(Path(local), config, split, streaming, cache_dir)
    try:
        return datasets.load_dataset(
            source, config, split=split, revision=revision, streaming=streaming, cache_dir=cache_dir
        )
    except Exception as exc:
        if is_network_failure(exc):
            raise LoadError(f"tried to load {source} from the Hub: {network_message(source, exc)}") from exc
        raise


def _load_release(path: Path, config: str, split, streaming: bool, cache_dir):
    from spa_vl.release.metadata import data_files, metadata_problems

    available = data_files(path)
    if config not in available:
        raise LoadError(f"{path} has no config {config!r}; configs: {', '.join(sorted(available))}")
    problems = metadata_problems(path)
    if problems:
        # Caught here, datasets would otherwise fail later with NonMatchingSplitsSizesError.
        raise LoadError(
            f"{path} is inconsistent; rebuild it or run `spa-vl card {path}`:\n  " + "\n  ".join(problems)
        )
    return datasets.load_dataset(str(path), config, split=split, streaming=streaming, cache_dir=cache_dir)


def _load_raw(path: Path, config: str, split, streaming: bool, cache_dir):
    from spa_vl.about import __version__
    from spa_vl.builder import SpaVL

    source = open_source(path)
    # The first column batch (or row) only: the builder reads the rest once.
    first = source.batches() if hasattr(source, "batches") else source.rows()
    if next(iter(first), None) is None:
        raise LoadError(f"{path} ({source.format} layout) holds no records")
    builder = SpaVL(
        config_name=config,
        data_dir=str(path.resolve()),
        source_format=source.format,
        fingerprint=source.fingerprint(),  # a changed source gets a new cache entry
        cache_dir=cache_dir,
        hash=__version__,
    )
    if streaming:
        return builder.as_streaming_dataset(split=split)
    builder.download_and_prepare()
    return builder.as_dataset(split=split)
