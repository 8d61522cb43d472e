"""A spa-vl release folder read back as canonical records (for audits and rebuilds).

Reads the ``default`` config, which holds every row; ClassLabel ids become names again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from spa_vl.sources.base import SPLITS, SourceRow, display_path, fingerprint_files
from spa_vl.taxonomy import load_taxonomy

EVAL_SETS = ("harm", "help")
BATCH_ROWS = 256


def is_release(path: Path) -> bool:
    return path.is_dir() and (
        (path / "MANIFEST.json").exists() or any(path.glob("data/default/*.parquet"))
    )


@dataclass
class ReleaseReader:
    path: Path
    config: str = "default"
    format: str = "release"

    detect = staticmethod(is_release)

    def files(self) -> list[Path]:
        return [
            f for s in SPLITS for f in sorted(self.path.glob(f"data/{self.config}/{s}-*.parquet"))
        ]

    def fingerprint(self) -> str:
        return fingerprint_files(self.path, self.files())

    def rows(self, splits: tuple[str, ...] | None = None) -> Iterator[SourceRow]:
        tax = load_taxonomy()
        names = {lvl: tax.names(lvl) for lvl in ("domain", "category", "subcategory")}

        def label(level: str, i: int | None) -> str | None:
            return names[level][i] if i is not None and i >= 0 else None

        for file in self.files():
            split = file.name.split("-", 1)[0]
            if splits is not None and split not in splits:
                continue
            name = display_path(file)
            n = 0
            for batch in pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS):
                for v in batch.to_pylist():
                    n += 1
                    ev = v.get("eval_set")
                    record = {
                        "id": v["id"],
                        "split": split,
                        "image": v["image"],
                        "image_name": v.get("image_name"),
                        "question": v["question"],
                        "chosen": v.get("chosen"),
                        "rejected": v.get("rejected"),
                        "class1": label("domain", v.get("domain")),
                        "class2": label("category", v.get("category")),
                        "class3": label("subcategory", v.get("subcategory")),
                        "eval_set": EVAL_SETS[ev] if ev is not None and ev >= 0 else None,
                    }
                    yield SourceRow(name, n, record)
