"""``SpaVL``: the canonical builder (a ``datasets.GeneratorBasedBuilder``).

It plays the role the design card gives ``spa_vl.py``: one BuilderConfig per config (``default``
and the six harm domains), the unified Features, and examples from the source readers through
validation. ``datasets`` 4 dropped script loading, so users load the script-free release
instead; this builder serves ``spa_vl.load(source=<raw source>)`` and defines what a release
holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets

from spa_vl.features import spa_vl_features, to_example
from spa_vl.sources import SPLITS, open_source
from spa_vl.taxonomy import CONFIGS, load_taxonomy
from spa_vl.validate import (
    Quarantine,
    RecordValidator,
    ValidationOptions,
    ValidationReport,
    validate_rows,
)

DATA_VERSION = "1.0.0"
HOMEPAGE = "https://sqrti.github.io/SPA-VL/"
LICENSE = "cc-by-4.0"
CITATION = """\
@inproceedings{zhang2025spavl,
  title     = {SPA-VL: A Comprehensive Safety Preference Alignment Dataset for Vision Language Models},
  author    = {Zhang, Yongting and Chen, Lu and Zheng, Guodong and Gao, Yifeng and Zheng, Rui and
               Fu, Jinlan and Yin, Zhenfei and Jin, Senjie and Qiao, Yu and Huang, Xuanjing and
               Zhao, Feng and Gui, Tao and Shao, Jing},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2025},
  eprint    = {2406.12030},
  archivePrefix = {arXiv}
}
"""
DESCRIPTION = (
    "SPA-VL: a safety preference alignment dataset for vision-language models. Each row is a "
    "question about an image with a chosen (safer) and a rejected response, labelled with a "
    "6-domain / 15-category / 53-subcategory harm taxonomy. The test split holds HarmEval and "
    "HelpEval (eval_set), which have questions only."
)


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


class SpaVL(datasets.GeneratorBasedBuilder):
    """SPA-VL with configs ``default`` and one per harm domain."""

    BUILDER_CONFIG_CLASS = SpaVLConfig
    BUILDER_CONFIGS = [  # noqa: RUF012 - datasets reads this class attribute as a list
        SpaVLConfig(name=name, version=datasets.Version(DATA_VERSION), description=config_description(name))
        for name in CONFIGS
    ]
    DEFAULT_CONFIG_NAME = "default"

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
        self._validator = RecordValidator(ValidationOptions(deep=self.config.deep))
        self.validation_report = ValidationReport(source=str(self.config.data_dir))
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in SPLITS]

    def _generate_examples(self, split: str) -> Iterator[tuple[str, dict]]:
        source = open_source(self.config.data_dir, self.config.source_format)
        self.validation_report.format = source.format
        rows = (r for r in source.rows(splits=(split,)) if (r.record or {}).get("split", split) == split)
        quarantine = self.config.quarantine
        qpath = Path(quarantine).with_suffix(f".{split}.jsonl") if quarantine else None
        # One validator across splits: ids must be unique over the whole dataset.
        with Quarantine(qpath) as q:
            for valid in validate_rows(rows, self.validation_report, quarantine=q, validator=self._validator):
                example = to_example(valid.record, valid.image)
                if in_config(example, self.config.name):
                    yield valid.record["id"], example
