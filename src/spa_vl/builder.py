"""``SpaVL``: the canonical builder (a ``datasets.ArrowBasedBuilder``).

It is what a loading script ``spa_vl.py`` would be: one BuilderConfig per config (``default``
and the six harm domains), the unified Features, and the rows of a raw source as Arrow tables,
through the same column batches and validation as ``spa-vl build`` (``spa_vl.validate.batches``: whole
batches checked with Arrow kernels, the rows they doubt by the row validator), shaped like
``datasets``' packaged parquet builder. ``datasets`` 4 dropped script loading, so users load the
script-free release instead; this builder serves ``spa_vl.load(source=<raw source>)`` and
defines what a release holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from spa_vl.about import CITATION, DATA_VERSION, DESCRIPTION, HOMEPAGE, LICENSE
from spa_vl.features import arrow_schema, spa_vl_features, to_example, to_table
from spa_vl.names import SPLITS
from spa_vl.sources import SourceRow, open_source
from spa_vl.sources.columns import ColumnBatch
from spa_vl.taxonomy import CONFIGS, load_taxonomy
from spa_vl.validate import (
    AcceptedBatch,
    Quarantine,
    RecordValidator,
    ValidationOptions,
    ValidationReport,
    ValidRecord,
    validate_batches,
)

# The published facts live in spa_vl.about; kept importable from here for older callers.
__all__ = ["CITATION", "DATA_VERSION", "DESCRIPTION", "HOMEPAGE", "LICENSE", "SpaVL"]

BUILDER_NAME = "spa_vl"  # builder_name and the cache folder (datasets would say "builder")
ROWS_PER_TABLE = 1_000  # rows of the row path (JSON sources) gathered into one Arrow table

try:  # datasets >= 4 tells a table's shard by a Key; older versions take any key
    from datasets.builder import Key
except ImportError:  # pragma: no cover - datasets < 4
    Key = None


def config_description(config: str) -> str:
    domain = load_taxonomy().domain_of_config(config)
    return "All rows." if domain is None else f"Rows of the harm domain {domain!r} only."


def in_config(example: dict, config: str) -> bool:
    """Whether a typed example belongs to ``config`` (a domain config holds labelled rows only)."""
    domain = load_taxonomy().domain_of_config(config)
    return domain is None or example["domain"] == load_taxonomy().index("domain", domain)


@dataclass
class SpaVLConfig(datasets.BuilderConfig):
    """A config; ``data_dir`` is the raw source, ``source_format`` its layout, ``fingerprint`` its
    content hash (part of the cache key, so a changed source is rebuilt)."""

    source_format: str = "auto"
    fingerprint: str | None = None
    deep: bool = False
    quarantine: str | None = None


class SpaVL(datasets.ArrowBasedBuilder):
    """SPA-VL with configs ``default`` and one per harm domain."""

    BUILDER_CONFIG_CLASS = SpaVLConfig
    BUILDER_CONFIGS = [  # noqa: RUF012 - datasets reads this class attribute as a list
        SpaVLConfig(name=name, version=datasets.Version(DATA_VERSION), description=config_description(name))
        for name in CONFIGS
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *args, dataset_name: str | None = None, **kwargs) -> None:
        super().__init__(*args, dataset_name=dataset_name or BUILDER_NAME, **kwargs)
        # datasets names a builder after its module, which would make it "builder".
        self.name = BUILDER_NAME
        self.info.builder_name = BUILDER_NAME

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=DESCRIPTION + " " + self.config.description,
            features=spa_vl_features(),
            homepage=HOMEPAGE,
            license=LICENSE,
            citation=CITATION,
            version=datasets.Version(DATA_VERSION),
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError("SpaVL needs data_dir: a raw SPA-VL source (Hub layout, RLHF JSON or JSONL)")
        # One validator across splits: ids must be unique over the whole dataset.
        self._validator = RecordValidator(ValidationOptions(deep=self.config.deep))
        self.validation_report = ValidationReport(source=str(self.config.data_dir))
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in SPLITS]

    def _generate_tables(self, split: str) -> Iterator[tuple[object, pa.Table]]:
        source = open_source(self.config.data_dir, self.config.source_format)
        self.validation_report.format = source.format
        # The column batches `spa-vl build` validates (rows for sources without them).
        items = (
            source.batches(splits=(split,)) if hasattr(source, "batches") else source.rows(splits=(split,))
        )
        quarantine = self.config.quarantine
        qpath = Path(quarantine).with_suffix(f".{split}.jsonl") if quarantine else None
        domain = load_taxonomy().domain_of_config(self.config.name)
        index = None if domain is None else load_taxonomy().index("domain", domain)
        with Quarantine(qpath) as q:
            accepted = validate_batches(
                _of_split(items, split), self.validation_report, quarantine=q, validator=self._validator
            )
            for i, table in enumerate(_tables(accepted)):
                if index is not None:  # a domain config holds the rows of its domain only
                    table = table.filter(pc.equal(table.column("domain"), index))
                if table.num_rows:
                    yield (Key(0, i) if Key is not None else i), table


def _of_split(items: Iterable[ColumnBatch | SourceRow], split: str) -> Iterator[ColumnBatch | SourceRow]:
    """The items of ``split`` (a file may hold rows that say they belong to another)."""
    for item in items:
        if isinstance(item, ColumnBatch):
            if item.split == split:
                yield item
        elif (item.record or {}).get("split", split) == split:
            yield item


def _tables(accepted: Iterable[AcceptedBatch | ValidRecord]) -> Iterator[pa.Table]:
    """Typed tables in reading order: each accepted column batch as one (``to_table``), the
    row path's records gathered ``ROWS_PER_TABLE`` at a time (``to_example``)."""
    schema = arrow_schema()
    rows: list[dict] = []
    for item in accepted:
        if isinstance(item, AcceptedBatch):
            if rows:
                yield pa.Table.from_pylist(rows, schema=schema)
                rows = []
            yield to_table(item.table)
            continue
        rows.append(to_example(item.record, item.image))
        if len(rows) >= ROWS_PER_TABLE:
            yield pa.Table.from_pylist(rows, schema=schema)
            rows = []
    if rows:
        yield pa.Table.from_pylist(rows, schema=schema)
