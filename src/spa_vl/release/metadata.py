"""The card's YAML metadata (``configs`` and ``dataset_info``), derived from the parquet files,
and a fast consistency check of it against those files (footers only, no data read)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import yaml

from spa_vl.features import spa_vl_features
from spa_vl.sources import SPLITS
from spa_vl.taxonomy import CONFIGS

_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.S)
_SHARD = re.compile(r"^(?P<split>[a-z]+)-\d{5}-of-\d{5}\.parquet$")


def data_files(folder: str | Path) -> dict[str, dict[str, list[Path]]]:
    """config -> split -> sorted shard paths found under ``data/``."""
    found: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(Path(folder).glob("data/*/*.parquet")):
        m = _SHARD.match(path.name)
        if m:
            found[path.parent.name][m["split"]].append(path)
    return {c: dict(s) for c, s in found.items()}


def configs_yaml(folder: str | Path | None = None) -> list[dict]:
    """The ``configs:`` list: one entry per config, ``default`` marked default.

    Given the release ``folder``, only splits (and configs) that have files are listed: datasets
    cannot load a config whose split is an empty parquet file."""
    found = data_files(folder) if folder is not None else None
    out = []
    for config in CONFIGS:
        splits = [s for s in SPLITS if found is None or found.get(config, {}).get(s)]
        if not splits:
            continue
        entry: dict = {
            "config_name": config,
            "data_files": [{"split": s, "path": f"data/{config}/{s}-*"} for s in splits],
        }
        if config == "default":
            entry["default"] = True
        out.append(entry)
    return out


def dataset_info_yaml(folder: str | Path, nbytes: dict[tuple[str, str], int] | None = None) -> list[dict]:
    """``dataset_info:`` per config: features, split sizes and byte counts, from the files."""
    infos = []
    files = data_files(folder)
    for config in CONFIGS:
        if not files.get(config):
            continue
        splits = datasets.SplitDict()
        download = 0
        for split in SPLITS:
            paths = files.get(config, {}).get(split, [])
            if not paths:
                continue
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
            size = sum(p.stat().st_size for p in paths)
            download += size
            num_bytes = (nbytes or {}).get((config, split))
            if num_bytes is None:
                num_bytes = sum(_arrow_bytes(p) for p in paths)
            splits.add(datasets.SplitInfo(split, num_bytes=num_bytes, num_examples=rows))
        info = datasets.DatasetInfo(
            features=spa_vl_features(),
            splits=splits,
            download_size=download,
            dataset_size=sum(s.num_bytes for s in splits.values()),
            config_name=config,
        )
        infos.append({"config_name": config, **info._to_yaml_dict()})
    return infos


def _arrow_bytes(path: Path) -> int:
    return pq.read_table(path).nbytes


def read_front_matter(readme: str | Path) -> tuple[dict, str]:
    """(YAML metadata, body) of a card; ValueError when the YAML block is missing or broken."""
    text = Path(readme).read_text(encoding="utf-8")
    m = _FRONT_MATTER.match(text)
    if not m:
        raise ValueError(f"{readme}: no YAML front matter (a block between '---' lines at the top)")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{readme}: the YAML front matter does not parse: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{readme}: the YAML front matter is not a mapping")
    return meta, text[m.end() :]


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
    configs = meta.get("configs") or []
    if not any(c.get("default") for c in configs if isinstance(c, dict)):
        problems.append(f"{readme}: configs: no config is marked `default: true`")
    for c in configs:
        name = c.get("config_name") if isinstance(c, dict) else None
        for df in (c.get("data_files") or []) if isinstance(c, dict) else []:
            split = df.get("split") if isinstance(df, dict) else None
            pattern = df.get("path") if isinstance(df, dict) else None
            if not pattern or not any(
                True for _ in folder.glob(pattern if pattern.endswith("parquet") else pattern + ".parquet")
            ):
                problems.append(f"{readme}: configs[{name}].data_files[{split}]: no file matches {pattern!r}")
    infos = meta.get("dataset_info") or []
    if isinstance(infos, dict):
        infos = [infos]
    for info in infos:
        name = info.get("config_name", "default")
        for s in info.get("splits") or []:
            paths = files.get(name, {}).get(s.get("name"), [])
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
            if s.get("num_examples") != rows:
                problems.append(
                    f"{readme}: dataset_info[{name}].splits[{s.get('name')}].num_examples is "
                    f"{s.get('num_examples')}, but the files hold {rows} rows"
                )
    return problems
