"""``spa_vl.load``: one call for a release folder, a raw source, or a Hub repository."""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from spa_vl.sources import SPLITS, SourceError, detect_format, is_release, open_source
from spa_vl.taxonomy import CONFIGS

UPSTREAM_REPO = "sqrti/SPA-VL"  # the authors' Hub dataset, in the raw Hub layout
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_SPLIT = re.compile(r"^(?P<name>[a-z]+)(\[.*\])?$")
# What of the upstream repository the raw Hub reader needs (not train.zip or meta_files/).
UPSTREAM_PATTERNS = ["data/*.parquet", "validation/*.parquet", "test/*.parquet", "README.md"]


class LoadError(ValueError):
    """Unknown config, split or source; the message lists what exists."""


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
    if isinstance(source, str) and _REPO_ID.match(source):
        if source == UPSTREAM_REPO:
            from huggingface_hub import snapshot_download

            local = snapshot_download(
                source,
                repo_type="dataset",
                revision=revision,
                allow_patterns=UPSTREAM_PATTERNS,
                cache_dir=cache_dir,
            )
            return _load_raw(Path(local), config, split, streaming, cache_dir)
        return datasets.load_dataset(
            source, config, split=split, revision=revision, streaming=streaming, cache_dir=cache_dir
        )
    raise LoadError(
        f"source {str(source)!r} is neither an existing folder or file nor a Hub repo id (ORG/NAME); "
        "give a release folder, a raw SPA-VL source, or a repo id"
    )


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
    from spa_vl import __version__
    from spa_vl.builder import SpaVL

    source = open_source(path)
    if next(iter(source.rows()), None) is None:
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
