"""The card's YAML metadata (``configs`` and ``dataset_info``), from the figures the build
gathered as it wrote (``ReleaseStats``), and a fast consistency check of it against the files
(footers only, no data read). File names and folders come from ``spa_vl.release.layout``."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow.parquet as pq
import yaml
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData, RepoCard

from spa_vl.features import spa_vl_features
from spa_vl.names import SPLITS
from spa_vl.release import layout
from spa_vl.release.stats import ReleaseStats
from spa_vl.taxonomy import CONFIGS


def data_files(folder: str | Path) -> dict[str, dict[str, list[Path]]]:
    """config -> split -> shard paths of the release ``folder``, in reading order."""
    return layout.ReleaseLayout.of(folder).data_files()


def configs_yaml(found: str | Path | ReleaseStats | None = None) -> list[dict]:
    """The ``configs:`` list: one entry per config, ``default`` marked default. A domain config
    reads its folder; ``default`` every folder (a list of patterns, in reading order).

    Given the release (its folder, or the build's ``ReleaseStats``), only splits (and configs)
    that have files are listed: datasets cannot load a config whose split is an empty parquet
    file, nor a pattern that matches nothing."""
    out = []
    for config in CONFIGS:
        if found is None:
            folders = {s: list(layout.folders_of_config(config)) for s in SPLITS}
        elif isinstance(found, ReleaseStats):
            folders = found.split_folders(config)
        else:
            folders = layout.ReleaseLayout.of(found).split_folders(config)
        files = layout.config_data_files(config, folders)
        if not files:
            continue
        entry: dict = {"config_name": config, "data_files": files}
        if config == "default":
            entry["default"] = True
        out.append(entry)
    return out


def dataset_info_yaml(
    stats: ReleaseStats,
    nbytes: dict[tuple[str, str], int] | None = None,
    folder: str | Path | None = None,
) -> list[dict]:
    """``dataset_info:`` per config: features, split sizes and byte counts. ``nbytes`` (Arrow
    bytes per (config, split), datasets' ``num_bytes``) defaults to the build's figures in
    ``stats``; a split missing from both is measured by reading its files in ``folder``."""
    nbytes = {**(stats.arrow_bytes or {}), **(nbytes or {})}
    infos = {}
    for config in CONFIGS:
        if not any(stats.files.get(config, {}).values()):
            continue
        split_dict = datasets.SplitDict()
        for split in SPLITS:
            paths = stats.files.get(config, {}).get(split, [])
            if not paths:
                continue
            num_bytes = nbytes.get((config, split))
            if num_bytes is None:
                if folder is None:
                    raise ValueError(f"no Arrow byte count for {config}/{split}, and no folder to read")
                num_bytes = sum(_arrow_bytes(Path(folder) / p) for p in paths)
            split_dict.add(
                datasets.SplitInfo(split, num_bytes=num_bytes, num_examples=stats.rows[config][split])
            )
        infos[config] = datasets.DatasetInfo(
            features=spa_vl_features(),
            splits=split_dict,
            download_size=stats.parquet_bytes.get(config, 0),
            dataset_size=sum(s.num_bytes for s in split_dict.values()),
            config_name=config,
        )
    return infos_yaml(infos)


def infos_yaml(infos: dict[str, datasets.DatasetInfo]) -> list[dict]:
    """``dataset_info:`` entries (``config_name`` first) for config -> ``DatasetInfo``, in the
    order of ``infos``, as datasets writes them into a card (``DatasetInfosDict``'s public
    ``to_dataset_card_data``; ``DatasetInfo``'s own YAML writer is private)."""
    if not infos:
        return []
    card = DatasetCardData()
    DatasetInfosDict(infos).to_dataset_card_data(card)
    # datasets inlines a lone config (without its name when it is "default") and sorts several
    # by name; the card lists them in CONFIGS order, so take them back by name.
    found = card["dataset_info"]
    by_name = {e.get("config_name", "default"): e for e in ([found] if isinstance(found, dict) else found)}
    return [{"config_name": c, **{k: v for k, v in by_name[c].items() if k != "config_name"}} for c in infos]


def features_yaml(features: datasets.Features) -> list[dict]:
    """``features`` as the card's ``dataset_info.features`` list (one entry per column)."""
    return infos_yaml({"default": datasets.DatasetInfo(features=features)})[0]["features"]


def _arrow_bytes(path: Path) -> int:
    return pq.read_table(path).nbytes


def read_front_matter(readme: str | Path) -> tuple[dict, str]:
    """(YAML metadata, body) of a card; ValueError when the YAML block is missing or broken."""
    text = Path(readme).read_text(encoding="utf-8")
    missing = ValueError(f"{readme}: no YAML front matter (a block between '---' lines at the top)")
    # Without a leading '---' there is surely no block; RepoCard would log a warning for it.
    if not text.lstrip().startswith("---"):
        raise missing
    try:
        card = RepoCard(text, ignore_metadata_errors=True)
    except yaml.YAMLError as exc:
        raise ValueError(f"{readme}: the YAML front matter does not parse: {exc}") from None
    except ValueError:  # RepoCard's "repo card metadata block should be a dict"
        raise ValueError(f"{readme}: the YAML front matter is not a mapping") from None
    if card.text == text:  # RepoCard keeps the whole text as the body when it finds no block
        raise missing
    return card.data.to_dict(), card.text


def write_card(readme: str | Path, meta: dict, body: str) -> None:
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    Path(readme).write_text(f"---\n{front}---\n{body}", encoding="utf-8")


def metadata_problems(folder: str | Path) -> list[str]:
    """Where README.md's ``configs``/``dataset_info`` disagree with the parquet files.

    Cheap (parquet footers only), so ``spa_vl.load`` runs it before ``datasets`` would fail
    with a less helpful NonMatchingSplitsSizesError."""
    folder = Path(folder)
    readme = folder / "README.md"
    try:
        meta, _ = read_front_matter(readme)
    except (OSError, ValueError) as exc:
        return [str(exc)]
    problems = []
    files = data_files(folder)
    footers: dict[Path, int] = {}
    configs = meta.get("configs") or []
    if not any(c.get("default") for c in configs if isinstance(c, dict)):
        problems.append(f"{readme}: configs: no config is marked `default: true`")
    for c in configs:
        name = c.get("config_name") if isinstance(c, dict) else None
        for df in (c.get("data_files") or []) if isinstance(c, dict) else []:
            split = df.get("split") if isinstance(df, dict) else None
            paths = df.get("path") if isinstance(df, dict) else None
            for pattern in [paths] if isinstance(paths, str) or not paths else paths:
                glob = (
                    pattern
                    if not isinstance(pattern, str) or pattern.endswith("parquet")
                    else pattern + ".parquet"
                )
                if not isinstance(glob, str) or not glob or not any(True for _ in folder.glob(glob)):
                    problems.append(
                        f"{readme}: configs[{name}].data_files[{split}]: no file matches {pattern!r}"
                    )
    infos = meta.get("dataset_info") or []
    if isinstance(infos, dict):
        infos = [infos]
    for info in infos:
        name = info.get("config_name", "default")
        for s in info.get("splits") or []:
            paths = files.get(name, {}).get(s.get("name"), [])
            for p in paths:
                if p not in footers:
                    footers[p] = pq.ParquetFile(p).metadata.num_rows
            rows = sum(footers[p] for p in paths)
            if s.get("num_examples") != rows:
                problems.append(
                    f"{readme}: dataset_info[{name}].splits[{s.get('name')}].num_examples is "
                    f"{s.get('num_examples')}, but the files hold {rows} rows"
                )
    return problems
