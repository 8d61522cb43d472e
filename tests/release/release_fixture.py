"""Hand-made release folders per docs/CONTRACTS.md (layout v2), independent of the builder.

``write_release`` writes parquet per data folder and split through ``datasets`` (so the Features
sit in the parquet metadata), each row once under its domain's folder, a README with YAML
``configs:`` and ``dataset_info:``, a CHANGELOG and a MANIFEST.json that lists every file. Names
come from ``spa_vl.release.layout``.
"""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import yaml
from PIL import Image as PILImage

from features_contract import contract_features
from spa_vl.release import layout
from spa_vl.release.manifest import ReleaseManifest
from spa_vl.taxonomy import load_taxonomy

SPLITS = ("train", "validation", "test")


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4), (seed * 37 % 256, seed * 91 % 256, 128)).save(buf, format="PNG")
    return buf.getvalue()


def sample_rows() -> list[dict]:
    """18 rows: in every split one row per domain, so every config has every split."""
    tax = load_taxonomy()
    rows = []
    for split in SPLITS:
        for i, domain in enumerate(tax.names("domain")):
            category = tax.children("domain", domain)[0]
            sub = tax.children("category", category)[0]
            n = len(rows)
            test = split == "test"
            rows.append(
                {
                    "id": f"{split}/{i:06d}",
                    "split": split,
                    "image": _png(n),
                    "image_name": f"{domain}/{category}/{sub}/{i}.png" if split == "train" else None,
                    "question": f"question {n} about {sub}?",
                    "chosen": None if test else f"safe answer {n}",
                    "rejected": None if test else f"unsafe answer {n}",
                    "domain": domain,
                    "category": category,
                    "subcategory": sub,
                    "eval_set": ("harm", "help")[i % 2] if test else None,
                }
            )
    return rows


def v2_rows() -> list[dict]:
    """v1 with validation/000001 reworded, train/000005 re-keyed as train/000102 and two train
    rows added; every config keeps rows in every split (datasets cannot read an empty split)."""
    rows = sample_rows()
    by_id = {r["id"]: r for r in rows}
    extra = []
    for new_id, old_id in (("train/000100", "train/000003"), ("train/000101", "train/000004")):
        extra.append(dict(by_id[old_id], id=new_id, question=by_id[old_id]["question"] + " (v1.1.0)"))
    by_id["train/000005"]["id"] = "train/000102"
    by_id["validation/000001"]["question"] = "a reworded question?"
    return rows + extra


def _columns(rows: list[dict], feats: datasets.Features) -> dict[str, list]:
    tax = load_taxonomy()
    cols: dict[str, list] = {name: [] for name in feats}
    for r in rows:
        cols["id"].append(r["id"])
        cols["image"].append({"bytes": r["image"], "path": None})
        for key in ("image_name", "question", "chosen", "rejected"):
            cols[key].append(r[key])
        for level in ("domain", "category", "subcategory"):
            cols[level].append(tax.index(level, r[level]))
        cols["eval_set"].append({"harm": 0, "help": 1}.get(r["eval_set"], -1))
    return cols


def write_release(folder: Path, version: str, rows: list[dict] | None = None) -> Path:
    """Write a valid release folder holding ``rows`` (default: ``sample_rows()``)."""
    tax = load_taxonomy()
    rows = sample_rows() if rows is None else rows
    feats = contract_features()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = ReleaseManifest(
        version=version,
        package_version="0.1.0",
        source={"format": "jsonl", "fingerprint": f"fixture-{version}"},
        counts={"read": len(rows), "accepted": len(rows), "quarantined": 0},
    )
    nbytes: dict[tuple[str, str], int] = {}
    for folder_name in layout.data_folders():
        for split in SPLITS:
            subset = [
                r
                for r in rows
                if r["split"] == split
                and layout.folder_of_domain(tax.index("domain", r["domain"])) == folder_name
            ]
            if not subset:
                continue
            rel = layout.data_path(folder_name, layout.shard_name(split, 0, 1))
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            ds = datasets.Dataset.from_dict(_columns(subset, feats), features=feats)
            ds.to_parquet(folder / rel)
            config = layout.config_of_folder(folder_name)
            manifest.set_file(folder, rel, rows=len(subset), config=config, split=split)
            nbytes[(folder_name, split)] = ds.data.nbytes
    configs, infos = [], []
    for config in tax.config_names:
        splits = []
        folders = {s: [f for f in layout.folders_of_config(config) if (f, s) in nbytes] for s in SPLITS}
        for split in SPLITS:
            files = manifest.data_files(config, split)
            splits.append(
                {
                    "name": split,
                    "num_bytes": sum(nbytes[(f, split)] for f in folders[split]),
                    "num_examples": sum(f.rows or 0 for f in files),
                }
            )
        entry: dict = {"config_name": config, "data_files": layout.config_data_files(config, folders)}
        if config == "default":
            entry["default"] = True
        configs.append(entry)
        infos.append({"config_name": config, "features": feats._to_yaml_list(), "splits": splits})
    meta = {
        "license": "cc-by-4.0",
        "task_categories": ["visual-question-answering"],
        "tags": ["safety", "preference"],
        "configs": configs,
        "dataset_info": infos,
    }
    card = f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# SPA-VL (test fixture {version})\n"
    (folder / "README.md").write_text(card, encoding="utf-8")
    (folder / "CHANGELOG.md").write_text(f"# Changelog\n\n## v{version}\n\nFixture.\n", encoding="utf-8")
    for rel in ("README.md", "CHANGELOG.md"):
        manifest.set_file(folder, rel)
    manifest.write(folder)
    return folder
