"""The forward audit on Ray: the same ``fingerprint_batch`` / ``match_batch`` as the local
engine, mapped by ``executor.RayExecutor`` over the Arrow batches of a ``ray.data`` Dataset, the
index built once and shared with ``ray.put``.

Two passes, as in the local engine, because the duplicate and leak scopes need the audited rows
themselves in the index: (1) read and fingerprint on the cluster, (2) collect the fingerprinted
rows on the driver and build the index, (3) match on the cluster. With ``--scopes eval`` the
index holds the eval items alone and pass 2 reads only the split column.

Ray is imported lazily: without the ``distributed`` extra the rest of the package works.
"""

from __future__ import annotations

import time
from typing import Any

from spa_vl.audit.core import MATCH_COLUMNS, fingerprint_batch, match_batch
from spa_vl.audit.engine import AuditRun, build_index, prefetch_eval_ocr, save_ocr_cache
from spa_vl.audit.evalsets import EvalSet
from spa_vl.audit.executor import RayExecutor
from spa_vl.audit.inputs import BATCH_COLUMNS, SourceBatches, is_release
from spa_vl.audit.settings import AuditSettings
from spa_vl.release.layout import ReleaseLayout, shard_split


def _schemas() -> tuple[Any, Any]:
    """Explicit Arrow schemas: a batch whose optional column is all None would otherwise get
    the null type, and blocks of different types do not concatenate."""
    import pyarrow as pa

    s = pa.string()
    numbers = {"score": pa.float64(), "similarity": pa.float64(), "containment": pa.float64()}
    numbers |= {"phash_distance": pa.int64(), "dhash_distance": pa.int64()}
    match = pa.schema([(c, numbers.get(c, s)) for c in MATCH_COLUMNS])
    return s, match


def to_table(cols: dict[str, Any]) -> Any:
    """A dict of columns (lists or numpy arrays) as an Arrow table with stable types."""
    import numpy as np
    import pyarrow as pa

    s, match = _schemas()
    known = {f.name: f.type for f in match}
    known |= {"image_exact": pa.uint64(), "image_phash": pa.uint64(), "image_dhash": pa.uint64()}
    known |= {"image_ok": pa.bool_(), "image": pa.binary()}
    arrays = {}
    for name, values in cols.items():
        if name == "image":  # struct {bytes, path} or bytes: keep the bytes only
            values = [v.get("bytes") if isinstance(v, dict) else v for v in values]
        typ = known.get(name, s)
        arrays[name] = pa.array(np.asarray(values) if typ == pa.uint64() else list(values), type=typ)
    return pa.table(arrays)


def _dataset(ray: Any, source: SourceBatches) -> Any:
    """A release folder through ``read_parquet``; any other source read on the driver and
    handed to Ray with ``from_arrow`` (raw sources are small: the release is the scale path)."""
    if is_release(source.path):
        files = [str(p) for p in ReleaseLayout.of(source.path).files("default")]
        import pyarrow.parquet as pq

        names = pq.read_schema(files[0]).names
        wanted = ["id", "question", "chosen", "rejected", "image_name"]
        wanted += ["image"] if source.images else []
        ds = ray.data.read_parquet(files, include_paths=True)
        ds = ds.select_columns([c for c in wanted if c in names] + ["path"])

        def add_split(batch: Any) -> Any:
            cols = batch.to_pydict()
            paths = cols.pop("path")
            cols["split"] = [shard_split(p) for p in paths]
            return to_table(cols)

        return ds.map_batches(add_split, batch_format="pyarrow")
    tables = [to_table(b) for b in source]
    if not tables:
        tables = [to_table({c: [] for c in BATCH_COLUMNS if c != "image"})]
    return ray.data.from_arrow(tables)


def _fingerprint(batch: Any, settings: AuditSettings) -> Any:
    return to_table(fingerprint_batch(batch, settings))


def _match(batch: Any, index: Any) -> Any:
    return to_table(match_batch(batch, index))


def run_ray(
    source: SourceBatches,
    eval_sets: list[EvalSet],
    settings: AuditSettings,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
) -> AuditRun:
    """Audit ``source`` on Ray; fills ``source.per_split`` / ``rows_read`` like a local run."""
    from tqdm import tqdm

    executor = RayExecutor(address, num_cpus)
    with executor.session() as ray:
        t0 = time.perf_counter()
        bs = source.batch_size
        ds = executor.map_dataset(
            _fingerprint, _dataset(ray, source), shared_ref=ray.put(settings), batch_size=bs
        )
        ds = ds.materialize()
        t1 = time.perf_counter()
        internal = bool({"duplicate", "leak"} & set(settings.scopes))
        wanted = None if internal else ["split", *(["image_ok"] if settings.images else [])]
        ocr_cols = ["ocr_text", "ocr_key", "ocr_state"] if settings.ocr else []
        wanted = wanted and wanted + ocr_cols
        collected: list[dict] = []
        read: list[dict] = []  # the OCR step's results: counts and the cache file
        rows = hashed = 0
        source.per_split.clear()  # a raw source counted while being read: count once, here
        with tqdm(desc="collect", unit=" rows", disable=not progress) as bar:
            for part in ds.iter_batches(batch_format="pyarrow", batch_size=bs):
                cols = part.select(wanted).to_pydict() if wanted else part.to_pydict()
                n = len(cols["split"])
                for sp in cols["split"]:
                    source.per_split[sp] = source.per_split.get(sp, 0) + 1
                rows += n
                hashed += int(sum(x for x in cols.get("image_ok", []) if x))
                if internal:
                    collected.append(cols)
                if ocr_cols:
                    read.append({c: cols[c] for c in ocr_cols})
                bar.update(n)
        source.rows_read = rows
        if settings.ocr:
            prefetch_eval_ocr(executor, eval_sets, settings)
        index, errors = build_index(collected, eval_sets, settings)
        del collected
        save_ocr_cache(settings, read)
        index_ref = ray.put(index)  # once; every match task reads the same object
        t2 = time.perf_counter()

        found = executor.map_dataset(_match, ds, shared_ref=index_ref, batch_size=bs)
        matches: dict[str, list] = {c: [] for c in MATCH_COLUMNS}
        for part in found.iter_batches(batch_format="pyarrow", batch_size=None):
            for c, v in part.to_pydict().items():
                matches[c].extend(v)
        t3 = time.perf_counter()
    return AuditRun.collect(
        matches, index, rows, hashed, errors, (t0, t1, t2, t3), read if settings.ocr else None
    )
