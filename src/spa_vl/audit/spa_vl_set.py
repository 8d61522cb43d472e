"""SPA-VL's own splits as a reference set, read in one place: the ``spa-vl`` eval adapter (the
test split, ``--eval NAME=PATH:spa-vl``) and the reverse scan's ``--against spa_vl=PATH``
(test and validation) both read them here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spa_vl.audit.evalset_items import EvalItem, EvalSetError, _add_bytes, _Options


def spa_vl_rows(
    path: Path, splits: tuple[str, ...], images: bool, config: str = "default"
) -> Iterator[tuple[str, str | None, Any]] | None:
    """(id, question, image) of the rows of ``splits`` in a release folder (``data/<config>/``)
    or a Hub-layout folder (``test/``, ``validation/``); image: a ``{bytes, path}`` struct,
    bytes or None (always None without ``images``). None when ``path`` is neither layout;
    ``EvalSetError`` naming the file when a release shard cannot be read."""
    from spa_vl.release.layout import ReleaseLayout, is_release

    if is_release(path):
        layout = ReleaseLayout.of(path)
        files = [(s, f) for s in splits for f in layout.files(config, s)]
        if files:
            return _release_rows(files, images)
    if any(any(path.glob(f"{s}/*.parquet")) for s in splits):
        return _hub_rows(path, splits, images)
    return None


def _release_rows(files: list[tuple[str, Path]], images: bool) -> Iterator[tuple[str, str | None, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split, file in files:
        try:
            names = pq.read_schema(file).names
            cols = ["id", "question"] + (["image"] if images and "image" in names else [])
            table = pq.read_table(file, columns=cols)
        except (OSError, pa.ArrowException) as exc:  # not parquet, damaged, a column missing
            raise EvalSetError(f"{file}: cannot read the spa-vl {split} split: {exc}") from None
        for row in table.to_pylist():
            yield row["id"], row["question"], row.get("image")


def _hub_rows(path: Path, splits: tuple[str, ...], images: bool) -> Iterator[tuple[str, str | None, Any]]:
    from spa_vl.sources import open_source

    for row in open_source(path, "hub").rows():
        rec = row.record or {}
        if rec.get("split") not in splits:
            continue
        image = rec.get("image") if images else None
        if images and not (isinstance(image, dict) and image.get("bytes")):
            try:
                image = row.image_bytes()
            except Exception:  # a missing image: the question is still matched
                image = None
        yield rec["id"], rec.get("question"), image


def read_spa_vl(path: Path, opts: _Options) -> list[EvalItem]:
    """The ``spa-vl`` adapter: the test split (HarmEval + HelpEval) of a release folder or a
    Hub-layout folder; image items carry the question."""
    rows = spa_vl_rows(path, ("test",), opts.load_images)
    if rows is None:
        raise EvalSetError(
            f"{path}: not a spa-vl folder: expected a release folder "
            "(data/<folder>/test-*.parquet with columns id, question, image) or a Hub-layout "
            "folder (test/harm-*.parquet, test/help-*.parquet with columns image, question)"
        )
    items: list[EvalItem] = []
    for id_, question, image in rows:
        items.append(EvalItem(id_, "question", question))
        _add_bytes(items, id_, image, question, opts)
    return items
