"""The one ``Features`` of every SPA-VL split and config (the contract: docs/CONTRACTS.md)."""

from __future__ import annotations

from functools import cache

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from spa_vl.names import EVAL_SETS
from spa_vl.sources.columns import contiguous
from spa_vl.taxonomy import load_taxonomy

__all__ = ["COLUMNS", "EVAL_SETS", "spa_vl_features", "to_example", "to_table"]
COLUMNS = (
    "id",
    "image",
    "image_name",
    "question",
    "chosen",
    "rejected",
    "domain",
    "category",
    "subcategory",
    "eval_set",
)


@cache
def spa_vl_features() -> datasets.Features:
    """Typed columns: Image with embedded bytes, ClassLabels over the frozen taxonomy order
    (-1 where unknown), nullable answers (None on test rows), and eval_set for test rows."""
    tax = load_taxonomy()
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "image": datasets.Image(),
            "image_name": datasets.Value("string"),
            "question": datasets.Value("string"),
            "chosen": datasets.Value("string"),
            "rejected": datasets.Value("string"),
            "domain": datasets.ClassLabel(names=tax.names("domain")),
            "category": datasets.ClassLabel(names=tax.names("category")),
            "subcategory": datasets.ClassLabel(names=tax.names("subcategory")),
            "eval_set": datasets.ClassLabel(names=list(EVAL_SETS)),
        }
    )


@cache
def arrow_schema() -> pa.Schema:
    """``spa_vl_features().arrow_schema``, computed once (``Features`` rebuilds it per access)."""
    return spa_vl_features().arrow_schema


def to_example(record: dict, image: bytes) -> dict:
    """A validated canonical record as a row of the unified schema (labels as ids)."""
    tax = load_taxonomy()
    image_ref = record.get("image")
    path = image_ref.get("path") if isinstance(image_ref, dict) else image_ref
    eval_set = record.get("eval_set")
    return {
        "id": record["id"],
        # Bytes pass through untouched: no decode and re-encode on the way to the release.
        "image": {"bytes": image, "path": path.rsplit("/", 1)[-1] if path else None},
        "image_name": record.get("image_name"),
        "question": record["question"],
        "chosen": record.get("chosen"),
        "rejected": record.get("rejected"),
        "domain": tax.index("domain", record.get("class1")),
        "category": tax.index("category", record.get("class2")),
        "subcategory": tax.index("subcategory", record.get("class3")),
        "eval_set": EVAL_SETS.index(eval_set) if eval_set in EVAL_SETS else -1,
    }


def to_table(batch: pa.Table) -> pa.Table:
    """``to_example`` over a table of validated canonical columns (``sources.columns``), with
    compute kernels: the same values, typed as ``arrow_schema()``."""
    tax = load_taxonomy()
    schema = arrow_schema()
    image = contiguous(batch.column("image"))
    data = pc.struct_field(image, "bytes").cast(pa.binary())
    path = pc.struct_field(image, "path").cast(pa.string())
    # path.rsplit("/", 1)[-1], and None for an empty path ("if path" in to_example)
    base = pc.replace_substring_regex(path, "(?s)^.*/", "")
    base = pc.if_else(pc.equal(path, ""), pa.scalar(None, pa.string()), base)
    image = pa.StructArray.from_arrays([data, base], fields=list(schema.field("image").type))

    def ids(column: str, names: list[str]) -> pa.ChunkedArray:
        found = pc.index_in(batch.column(column), value_set=pa.array(names, pa.string()))
        return pc.fill_null(found, -1).cast(pa.int64())

    columns = {
        "id": batch.column("id"),
        "image": image,
        "image_name": batch.column("image_name"),
        "question": batch.column("question"),
        "chosen": batch.column("chosen"),
        "rejected": batch.column("rejected"),
        "domain": ids("class1", tax.names("domain")),
        "category": ids("class2", tax.names("category")),
        "subcategory": ids("class3", tax.names("subcategory")),
        "eval_set": ids("eval_set", list(EVAL_SETS)),
    }
    return pa.table([columns[c] for c in COLUMNS], schema=schema)
