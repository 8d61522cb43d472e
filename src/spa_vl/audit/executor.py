"""One way to run an audit step over parts, in the shape of datatrove's executors: a step is a
pure function ``fn(part, shared)`` (``core.fingerprint_batch``, ``core.match_batch``, one
shard's scan), an executor maps it over parts and yields the results in the parts' order.

``LocalExecutor(workers)`` runs in this process or in a pool of processes; ``RayExecutor``
on a Ray cluster. Both send ``shared`` (the settings, the index) to each worker once, and both
take ``done``: ``ResumeMarkers`` that skip parts already done and record each new result.

Resume: a part's result is written to ``<folder>/<key>.json`` through ``<key>.tmp`` and an
atomic rename, so the file exists only once the part is complete; its presence (and a valid
body) is the completion marker. ``key`` hashes the part's identity (what changes when its
input changes, e.g. a shard's path, size and mtime) with a config fingerprint (settings,
columns, eval items), so a changed input or setting runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Step = Callable[[Any, Any], Any]  # fn(part, shared) -> result


@dataclass
class ResumeMarkers:
    """Completion markers of one step's parts under ``folder`` (see the module docstring).

    ``valid``: whether a stored result is whole (a damaged one counts as not done);
    ``persist``: what of a result is written (default: all of it)."""

    folder: Path
    config: str
    valid: Callable[[Any], bool] = lambda result: True
    persist: Callable[[Any], Any] = lambda result: result

    def key(self, identity: str) -> str:
        """The marker's name: 20 hex digits of sha1(identity, config)."""
        return hashlib.sha1(f"{identity}\0{self.config}".encode()).hexdigest()[:20]

    def path(self, identity: str) -> Path:
        return self.folder / f"{self.key(identity)}.json"

    def read(self, identity: str) -> Any | None:
        """The stored result of a done part, or None (absent, unreadable or not ``valid``)."""
        try:
            result = json.loads(self.path(identity).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, unreadable, not UTF-8 or not JSON
            return None
        return result if self.valid(result) else None

    def is_done(self, identity: str) -> bool:
        return self.read(identity) is not None

    def write(self, identity: str, result: Any) -> None:
        """Record a part as done: written aside, then renamed into place (atomic: a kill never
        leaves half a result behind)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(identity)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.persist(result), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


class Executor:
    """What the audit asks of an executor: ``map`` a step over parts, in order, skipping the
    parts ``done`` records and recording the others as they finish. Subclasses say how the
    (part, result) pairs are computed (``_pairs``)."""

    def map(
        self,
        fn: Step,
        parts: Iterable[Any],
        *,
        shared: Any = None,
        done: ResumeMarkers | None = None,
        identity: Callable[[Any], str] = str,
    ) -> Iterator[Any]:
        """``fn(part, shared)`` for each part not ``done``, results in the parts' order."""
        return _recorded(self._pairs(fn, _todo(parts, done, identity), shared), done, identity)

    def _pairs(self, fn: Step, todo: Iterator[Any], shared: Any) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError


def _todo(parts: Iterable[Any], done: ResumeMarkers | None, identity: Callable[[Any], str]) -> Iterator:
    return iter(parts) if done is None else (p for p in parts if not done.is_done(identity(p)))


def _recorded(
    results: Iterator[tuple[Any, Any]], done: ResumeMarkers | None, identity: Callable[[Any], str]
) -> Iterator[Any]:
    """Yield each result, recording it first when resuming."""
    for part, result in results:
        if done is not None:
            done.write(identity(part), result)
        yield result


_SHARED: Any = None  # per pool process: the ``shared`` object of its map, set by _init_worker


def _init_worker(shared: Any) -> None:
    global _SHARED
    _SHARED = shared


def _call(fn: Step, part: Any) -> Any:
    return fn(part, _SHARED)


class LocalExecutor(Executor):
    """Runs a step in this process (``workers`` <= 1) or in a pool of ``workers`` processes.

    A pool lives for one ``map`` and gets ``shared`` once per process, at start-up; at most
    ``window`` parts per worker are in flight (bounded memory; a kill loses little work)."""

    def __init__(self, workers: int = 1, window: int = 2):
        self.workers = workers
        self.window = window

    def _pairs(self, fn: Step, todo: Iterator[Any], shared: Any) -> Iterator[tuple[Any, Any]]:
        if self.workers <= 1:
            return ((p, fn(p, shared)) for p in todo)
        return self._pooled(fn, todo, shared)

    def _pooled(self, fn: Step, todo: Iterator[Any], shared: Any) -> Iterator[tuple[Any, Any]]:
        with ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(shared,)) as pool:
            running: deque[tuple[Any, Future]] = deque()
            try:
                for part in todo:
                    running.append((part, pool.submit(_call, fn, part)))
                    if len(running) >= self.window * self.workers:
                        head, fut = running.popleft()
                        yield head, fut.result()
                while running:
                    head, fut = running.popleft()
                    yield head, fut.result()
            finally:  # closed early (stop_after, an error): drop what has not started
                for _, fut in running:
                    fut.cancel()


_RAY_SHARED: dict[str, Any] = {}  # per Ray worker process: the object of the last ref fetched


def shared_object(ref: Any) -> Any:
    """``ray.get(ref)``, fetched once per worker process (Ray reuses workers across tasks)."""
    key = ref.hex()
    if key not in _RAY_SHARED:
        import ray

        _RAY_SHARED.clear()  # one object at a time: a long-lived worker must not pile them up
        _RAY_SHARED[key] = ray.get(ref)
    return _RAY_SHARED[key]


MISSING_RAY = (
    "--engine ray needs Ray Data, which is not installed: pip install 'spa-vl[distributed]' "
    "(the `distributed` extra, ray[data])"
)


# Ray lists files on 8 threads, and there the first import of fsspec's HTTP filesystem races
# (without aiohttp a thread sees a half-imported module: ImportError, which Ray does not catch).
# A parquet folder or a few shards list fast enough on one thread.
_RAY_ENV = {"RAY_DATA_LIST_FILES_THREADED_NUM_WORKERS": "1"}


class RayMissingError(RuntimeError):
    """The ``distributed`` extra is not installed."""


def import_ray() -> Any:
    """``ray`` with ``ray.data``, or ``RayMissingError`` naming the extra."""
    for k, v in _RAY_ENV.items():  # read when ray.data is imported, here and in the workers
        os.environ.setdefault(k, v)
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayMissingError(MISSING_RAY) from exc
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Join the cluster at ``address``, or start Ray locally with ``num_cpus``; a session this
    function started is shut down on exit, one already running (tests, notebooks) is kept."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": _RAY_ENV},
        )
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        # the index is built from the rows in source order, as in the local engine
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        yield ray
    finally:
        if started:
            ray.shutdown()


class RayExecutor(Executor):
    """Runs a step on Ray: joins the cluster at ``address`` or starts Ray with ``num_cpus`` (see
    ``ray_session``); ``shared`` goes to the cluster once, by ``ray.put``.

    ``parts`` is a list of small values (one task each, e.g. shard paths), or a ``ray.data``
    Dataset: then each batch of ``batch_size`` rows is a part, ``fn`` gets it as an Arrow
    table and returns one, and ``map_dataset`` returns the mapped Dataset (lazy; the data stay
    on the cluster)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus

    def session(self) -> Any:
        """The Ray session (a context manager yielding ``ray``)."""
        return ray_session(self.address, self.num_cpus)

    def _pairs(self, fn: Step, todo: Iterator[Any], shared: Any) -> Iterator[tuple[Any, Any]]:
        """One Ray task each."""
        parts = list(todo)
        return zip(parts, self._results(fn, parts, shared), strict=True)

    def _results(self, fn: Step, todo: list[Any], shared: Any) -> Iterator[Any]:
        if not todo:
            return
        with self.session() as ray:
            ref = ray.put(shared)

            def run(batch: dict) -> dict:
                out = [fn(pickle.loads(p), shared_object(ref)) for p in batch["part"]]
                return {"result": [pickle.dumps(r) for r in out]}

            # one row per part, one task per row; the session preserves the order
            ds = ray.data.from_items([{"part": pickle.dumps(p)} for p in todo], override_num_blocks=len(todo))
            for row in ds.map_batches(run, batch_size=1, batch_format="numpy").iter_rows():
                yield pickle.loads(row["result"])

    @staticmethod
    def map_dataset(fn: Step, ds: Any, *, shared_ref: Any = None, batch_size: int | None = None) -> Any:
        """``fn(batch, shared)`` over the Arrow batches of a Dataset, inside a session; ``shared_ref``
        is a ``ray.put`` ref (put once by the caller, who may map several steps with it)."""

        def run(batch: Any) -> Any:
            return fn(batch, None if shared_ref is None else shared_object(shared_ref))

        return ds.map_batches(run, batch_format="pyarrow", batch_size=batch_size)


@dataclass(frozen=True)
class Engine:
    """Where the audit's steps run: ``local`` (``workers`` processes; 1: this one) or ``ray`` (the
    cluster at ``ray_address``, or Ray started here with ``num_cpus``)."""

    kind: str = "local"
    workers: int = 1
    ray_address: str | None = None
    num_cpus: int | None = None

    def executor(self) -> Executor:
        if self.kind == "ray":
            return RayExecutor(self.ray_address, self.num_cpus)
        return LocalExecutor(self.workers)


LOCAL = Engine()  # this process alone: the default of every entry point
