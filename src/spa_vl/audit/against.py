"""The eval side of the reverse scan (``spa-vl audit CORPUS --against ...``): SPA-VL's test and
validation items from a local copy, or any eval set the adapters read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spa_vl.audit.evalsets import EvalItem, EvalSet, EvalSetError, load_eval_spec
from spa_vl.release.layout import ReleaseLayout, is_release

SPA_VL_SPLITS = ("test", "validation")


class ScanError(ValueError):
    """A corpus or an eval spec that cannot be scanned as asked."""


def load_spa_vl(path: str | Path, images: bool, splits: tuple[str, ...] = SPA_VL_SPLITS) -> EvalSet:
    """SPA-VL's test and validation items from a release folder (``data/<config>/``) or a
    Hub-layout folder (``test/``, ``validation/``)."""
    path = Path(path)
    config = "default"
    if ":" in path.name and not path.exists():  # spa_vl=RELEASE:CONFIG
        head, _, config = str(path).rpartition(":")
        path = Path(head)
    items: list[EvalItem] = []
    found = ReleaseLayout.of(path)
    files = [f for s in splits for f in found.files(config, s)] if is_release(path) else []
    if files:
        import pyarrow.parquet as pq

        for file in files:
            names = pq.read_schema(file).names
            cols = [c for c in ("id", "question", "image") if c in names and (c != "image" or images)]
            for row in pq.read_table(file, columns=cols).to_pylist():
                items.append(EvalItem(row["id"], "question", row["question"]))
                image = row.get("image")
                data = image.get("bytes") if isinstance(image, dict) else image
                if images and data:
                    items.append(EvalItem(row["id"], "image", None, image=data, image_label=row["id"]))
    elif any((path / s).is_dir() for s in splits):
        from spa_vl.sources import open_source

        for row in open_source(path, "hub").rows():
            rec = row.record or {}
            if rec.get("split") not in splits:
                continue
            items.append(EvalItem(rec["id"], "question", rec.get("question")))
            if images:
                try:
                    data = row.image_bytes()
                except Exception:  # a missing image: the question is still scanned for
                    data = None
                if data:
                    items.append(EvalItem(rec["id"], "image", None, image=data, image_label=rec["id"]))
    else:
        raise ScanError(
            f"{path}: not a SPA-VL folder: expected a release folder (data/<folder>/test-*.parquet) "
            "or a Hub-layout folder (test/, validation/)"
        )
    return EvalSet("spa_vl", "spa-vl", path, items)


def load_against(spec: str, args: Any, images: bool) -> EvalSet:
    """``--against`` value: ``spa_vl=PATH[:CONFIG]`` (test + validation), or any eval adapter
    spec ``NAME=PATH[:FORMAT]``."""
    name, sep, rest = spec.partition("=")
    if name in ("spa_vl", "spa-vl") and sep:
        return load_spa_vl(rest, images)
    if spec in ("spa_vl", "spa-vl") or spec.startswith(("spa_vl:", "spa-vl:")):
        raise ScanError(
            "--against spa_vl needs a local copy: spa_vl=PATH (a release folder from `spa-vl "
            "build`, or a Hub-layout folder such as a `huggingface-cli download` of SPA-VL)"
        )
    try:
        return load_eval_spec(
            spec,
            text_fields=getattr(args, "text_field", ()),
            image_field=getattr(args, "image_field", None),
            id_field=getattr(args, "id_field", None),
            load_images=images,
        )
    except EvalSetError as exc:
        raise ScanError(str(exc)) from None
