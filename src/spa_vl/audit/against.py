"""The eval side of the reverse scan (``spa-vl audit CORPUS --against ...``): SPA-VL's test and
validation items from a local copy, or any eval set the adapters read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spa_vl.audit.evalsets import EvalItem, EvalSet, EvalSetError, load_eval_spec
from spa_vl.audit.spa_vl_set import spa_vl_rows

SPA_VL_SPLITS = ("test", "validation")


class ScanError(ValueError):
    """A corpus or an eval spec that cannot be scanned as asked."""


def load_spa_vl(path: str | Path, images: bool, splits: tuple[str, ...] = SPA_VL_SPLITS) -> EvalSet:
    """SPA-VL's test and validation items from a release folder (``data/<config>/``) or a
    Hub-layout folder (``test/``, ``validation/``), read by ``spa_vl_set.spa_vl_rows``."""
    path = Path(path)
    config = "default"
    if ":" in path.name and not path.exists():  # spa_vl=RELEASE:CONFIG
        head, _, config = str(path).rpartition(":")
        path = Path(head)
    try:
        rows = spa_vl_rows(path, splits, images, config)
    except EvalSetError as exc:
        raise ScanError(str(exc)) from None
    if rows is None:
        raise ScanError(
            f"{path}: not a SPA-VL folder: expected a release folder (data/<folder>/test-*.parquet) "
            "or a Hub-layout folder (test/, validation/)"
        )
    items: list[EvalItem] = []
    for id_, question, image in rows:
        items.append(EvalItem(id_, "question", question))
        data = image.get("bytes") if isinstance(image, dict) else image
        if images and data:  # labelled by the row id: the report names the SPA-VL row
            items.append(EvalItem(id_, "image", None, image=bytes(data), image_label=id_))
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
