"""The reverse direction: scan a large corpus of parquet shards for eval items (SPA-VL's test
and validation questions, or any eval set).

The index holds the eval items alone (scope ``eval``: duplicates inside a corpus are not this
tool's job), so it is small and built once. Each shard is streamed with ``iter_batches``
(bounded memory), mapped through the same ``fingerprint_batch`` / ``match_batch`` as the
forward audit by an executor (``executor``), and its result recorded by the executor's resume
markers as ``<work dir>/<key>.json``. A re-run skips the shards whose part exists; the report is
merged from the parts. The key hashes the shard's path, size and mtime with the settings, the
column mapping and the eval items, so a changed shard or setting is scanned again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from spa_vl.audit.against import SPA_VL_SPLITS, ScanError, load_against, load_spa_vl
from spa_vl.audit.core import MATCH_COLUMNS, fingerprint_batch, match_batch
from spa_vl.audit.engine import AuditRun, build_index, ocr_counts, save_ocr_cache
from spa_vl.audit.evalsets import EvalSet
from spa_vl.audit.executor import LOCAL, Engine, Executor, RayExecutor, ResumeMarkers
from spa_vl.audit.image import IMAGE_KEY_VERSION
from spa_vl.audit.reference import AuditIndex
from spa_vl.audit.settings import AuditSettings

# the eval side lives in ``against``; its names stay importable from here
__all__ = ["SPA_VL_SPLITS", "Columns", "ScanError", "load_against", "load_spa_vl", "run_scan", "scan_corpus"]

CORPUS_SPLIT = "corpus"  # the source_split of every corpus row in the report


@dataclass(frozen=True)
class Columns:
    """Which corpus columns hold the text, the image and the row id."""

    text: str = "text"
    image: str | None = None
    id: str | None = None


# ---------------------------------------------------------------- corpus side


def _fs(url: str) -> tuple[Any, str, bool]:
    """(file system, path on it, whether it is this machine's) of a corpus or a shard URL."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return fs, path, "file" in protocols or "local" in protocols


def _url(fs: Any, path: str, local: bool) -> str:
    """A listed path as a URL that ``_fs`` opens again (a local path stays a plain path)."""
    if local:
        return path
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{path}"


def list_shards(corpus: str) -> list[str]:
    """Parquet shards of a folder (recursive), a glob, or a single file, listed through fsspec
    (``fsspec.core.url_to_fs``): local paths and ``hf://datasets/...`` alike, or any other
    fsspec URL. (The Hub cannot be reached from the tests: they list local folders and an
    in-memory file system, ``memory://``, which exercise the same calls.)"""
    fs, root, local = _fs(corpus)
    if any(c in corpus for c in "*?["):
        found = fs.glob(root)
    elif fs.isdir(root):
        found = fs.glob(root.rstrip("/") + "/**/*.parquet")
    elif fs.isfile(root):
        return [corpus]
    else:
        raise ScanError(f"{corpus}: no such corpus (a folder of parquet shards, a glob or hf://...)")
    shards = sorted(_url(fs, p, local) for p in found if fs.isfile(p))
    if not shards:
        raise ScanError(f"{corpus}: no parquet shards found")
    return shards


def open_shard(shard: str) -> Any:
    """A ``pyarrow.parquet.ParquetFile`` for a local or remote (``hf://``, any fsspec URL)
    shard; ``ScanError`` naming the shard when it is not a readable parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        fs, path, local = _fs(shard)
        if local:
            if not Path(shard).is_file():
                raise ScanError(f"{shard}: not a regular file")
            return pq.ParquetFile(shard)
        return pq.ParquetFile(fs.open(path, "rb"))
    except (OSError, pa.ArrowException) as exc:
        raise ScanError(f"{shard}: not a readable parquet file ({exc})") from None


def check_columns(shard: str, names: list[str], cols: Columns) -> None:
    """Every mapped column is in the shard, or ``ScanError`` naming the missing ones."""
    wanted = {"--text-column": cols.text, "--image-column": cols.image, "--id-column": cols.id}
    missing = [f"{opt} {c!r}" for opt, c in wanted.items() if c and c not in names]
    if missing:
        raise ScanError(f"{shard}: missing column(s) {', '.join(missing)}; the shard has: {', '.join(names)}")


def shard_identity(shard: str) -> str:
    """What names a shard's part besides the config: its path, size and mtime (a changed shard
    is scanned again); a remote shard (``hf://``) by its name alone."""
    stat = "" if "://" in shard else (lambda s: f"{s.st_size}:{s.st_mtime_ns}")(os.stat(shard))
    return f"{shard}\0{stat}"


def scan_shard(
    shard: str,
    index: AuditIndex,
    cols: Columns,
    batch_size: int = 8192,
    on_rows: Callable[[int], None] | None = None,
) -> dict:
    """Stream one shard through fingerprint and match; returns its part (rows, matches)."""
    import pyarrow as pa

    pf = open_shard(shard)
    check_columns(shard, pf.schema_arrow.names, cols)
    kind = pf.schema_arrow.field(cols.text).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
        raise ScanError(f"{shard}: --text-column {cols.text!r} holds {kind}, not text")
    read = [c for c in (cols.text, cols.image, cols.id) if c]
    name = shard.rsplit("/", 1)[-1]
    settings = index.settings
    matches: dict[str, list] = {c: [] for c in MATCH_COLUMNS}
    rows = hashed = 0
    ocr: dict[str, int] = {}
    fresh: dict[str, list] = {"keys": [], "texts": []}  # what OCR read or gated here: the cache's
    for part in _batches(shard, pf, batch_size, list(dict.fromkeys(read))):
        data = part.to_pydict()
        n = len(data[cols.text])
        ids = [str(x) for x in data[cols.id]] if cols.id else [f"{name}:{rows + i}" for i in range(n)]
        batch = {"id": ids, "split": [CORPUS_SPLIT] * n, "question": data[cols.text]}
        if settings.images or settings.ocr:
            batch["image"] = data[cols.image] if cols.image else [None] * n
        fb = fingerprint_batch(batch, settings)
        hashed += int(sum(fb.get("image_ok", [])))
        if settings.ocr:
            for k, v in ocr_counts([fb]).items():
                ocr[k] = ocr.get(k, 0) + v
            for key, text, state in zip(fb["ocr_key"], fb["ocr_text"], fb["ocr_state"], strict=True):
                if state in ("read", "gated"):
                    fresh["keys"].append(key)
                    fresh["texts"].append(text)
        found = match_batch(fb, index)
        for c in MATCH_COLUMNS:
            matches[c].extend(found[c])
        rows += n
        if on_rows is not None:
            on_rows(n)
    out = {"shard": shard, "rows": rows, "images_hashed": hashed, "matches": matches}
    if settings.ocr:
        out |= {"ocr": ocr, "ocr_read": fresh}
    return out


def _batches(shard: str, pf: Any, batch_size: int, columns: list[str]) -> Iterator[Any]:
    """``pf.iter_batches``, with a damaged page reported against its shard."""
    import pyarrow as pa

    batches = pf.iter_batches(batch_size=batch_size, columns=columns)
    while True:
        try:
            part = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            raise ScanError(f"{shard}: cannot read the parquet data ({exc})") from None
        yield part


# ---------------------------------------------------------------- resume and engines


def _scan_step(shard: str, index: AuditIndex, cols: Columns, batch_size: int) -> dict:
    """The scan's step for an executor: one shard, streamed (``scan_shard``)."""
    return scan_shard(shard, index, cols, batch_size)


def _valid_part(part: Any) -> bool:
    """A stored part is whole (else the shard is scanned again)."""
    return (
        isinstance(part, dict)
        and isinstance(part.get("rows"), int)
        and isinstance(part.get("images_hashed"), int)
        and isinstance(part.get("matches"), dict)
        and all(isinstance(part["matches"].get(c), list) for c in MATCH_COLUMNS)
        and all(isinstance(v, int) for v in (part.get("ocr") or {}).values())
    )


def markers(work_dir: Path, config: str) -> ResumeMarkers:
    """The scan's completion markers: one part file per shard, without what OCR read (that
    goes to the OCR cache file instead)."""

    def persist(part: dict) -> dict:
        return {k: v for k, v in part.items() if k != "ocr_read"}

    return ResumeMarkers(work_dir, config, valid=_valid_part, persist=persist)


def _config(settings: AuditSettings, cols: Columns, eval_sets: list[EvalSet]) -> str:
    digest = hashlib.sha1()
    for es in eval_sets:
        for it in es.items:
            digest.update(f"{es.name}\0{it.id}\0{it.field}\0{it.text}\0".encode())
            digest.update(hashlib.sha1(it.image).digest() if it.image else b"-")
    config = [settings.to_dict(), cols.__dict__, digest.hexdigest()]
    if settings.images:  # parts hold image matches made with this pixel-exact key
        config.append({"image_key": IMAGE_KEY_VERSION})
    return json.dumps(config, sort_keys=True)


def _scan_todo(
    executor: Executor,
    todo: list[str],
    done: ResumeMarkers,
    index: AuditIndex,
    cols: Columns,
    batch_size: int,
    progress: bool,
    stop_after: int | None,
    total: int,
) -> int:
    """Scan the shards not done yet; the executor records each one's part as it finishes."""
    from tqdm import tqdm

    scanned = 0
    step = partial(_scan_step, cols=cols, batch_size=batch_size)
    with tqdm(total=total, desc="scan", unit=" rows", unit_scale=True, disable=not progress) as bar:
        parts = executor.map(step, todo, shared=index, done=done, identity=shard_identity)
        for part in parts:
            bar.update(part["rows"])
            fresh = part.get("ocr_read")
            if fresh and index.settings.ocr_cache:  # as the forward audit does, from this process
                save_ocr_cache(index.settings, [{"ocr_key": fresh["keys"], "ocr_text": fresh["texts"]}])
            scanned += 1
            if stop_after is not None and scanned >= stop_after:
                parts.close()
                break
    return scanned


def scan_corpus(
    corpus: str,
    eval_sets: list[EvalSet],
    settings: AuditSettings,
    work_dir: Path,
    cols: Columns = Columns(),
    engine: Engine = LOCAL,
    batch_size: int = 8192,
    progress: bool = True,
    stop_after: int | None = None,
) -> tuple[AuditRun, dict]:
    """Scan every shard not done yet, then merge all parts; returns the run and the source
    description. ``stop_after`` ends the run after that many newly scanned shards (the crash
    hook of the resume test)."""

    t0 = time.perf_counter()
    settings = replace(settings, scopes=("eval",), answers=False)
    shards = list_shards(corpus)
    first = open_shard(shards[0])
    check_columns(shards[0], first.schema_arrow.names, cols)  # fail early, before the index
    index, errors = build_index([], eval_sets, settings)
    config = _config(settings, cols, eval_sets)
    done = markers(work_dir, config)
    work_dir.mkdir(parents=True, exist_ok=True)
    identities = {s: shard_identity(s) for s in shards}
    resumed = {s for s in shards if done.is_done(identities[s])}
    todo = [s for s in shards if s not in resumed]
    total = sum(open_shard(s).metadata.num_rows for s in todo)
    t_start = time.perf_counter()
    with ExitStack() as stack:
        executor = engine.executor()
        if isinstance(executor, RayExecutor) and todo:  # started apart, so the scan time is the scan's alone
            stack.enter_context(executor.session())
        t1 = time.perf_counter()
        _scan_todo(executor, todo, done, index, cols, batch_size, progress, stop_after, total)
        t2 = time.perf_counter()
    matches: dict[str, list] = {c: [] for c in MATCH_COLUMNS}
    rows = hashed = complete = 0
    ocr: dict[str, int] = {}
    for s in shards:
        part = done.read(identities[s])
        if part is None:
            continue
        complete += 1
        rows += part["rows"]
        hashed += part["images_hashed"]
        for k, v in (part.get("ocr") or {}).items():
            ocr[k] = ocr.get(k, 0) + v
        for c in MATCH_COLUMNS:
            matches[c].extend(part["matches"][c])
    seconds = {"index": round(t_start - t0, 3), "engine_start": round(t1 - t_start, 3)}
    seconds["scan"] = round(t2 - t1, 3)
    run = AuditRun(matches, index.stats(), rows, hashed, errors, seconds, ocr if settings.ocr else {})
    source = {
        "path": corpus,
        "format": "parquet-corpus",
        "shards": len(shards),
        "shards_complete": complete,
        "shards_resumed": len(resumed),
        "columns": {k: v for k, v in cols.__dict__.items() if v},
        "rows_per_split": {CORPUS_SPLIT: rows},
    }
    return run, source


def run_scan(
    corpus: str,
    eval_sets: list[EvalSet],
    settings: AuditSettings,
    out: Path,
    work_dir: Path | None = None,
    text_column: str = "text",
    image_column: str | None = None,
    id_column: str | None = None,
    engine: Engine = LOCAL,
    batch_size: int = 8192,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Scan and build the report dict (the CLI's entry point)."""
    from spa_vl.audit.report import build_report

    images = settings.images or settings.ocr  # the OCR tier reads the images too
    if images and not image_column:
        raise ScanError(f"{'--images' if settings.images else '--ocr'} on a corpus needs --image-column")
    cols = Columns(text_column, image_column if images else None, id_column)
    run, source = scan_corpus(
        corpus,
        eval_sets,
        settings,
        work_dir or out.with_name(out.name + ".parts"),
        cols,
        engine=engine,
        batch_size=batch_size,
        progress=progress,
        stop_after=stop_after,
    )
    settings = replace(settings, scopes=("eval",), answers=False)
    return build_report(run, settings, source, eval_sets)
