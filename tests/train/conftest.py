"""Fixtures for the train tests: a tiny release folder and tiny LLaVAs, all built offline.

The models are LlavaForConditionalGeneration from small CLIP and Llama configs, saved with
``save_pretrained`` so the code under test loads them by path exactly as it would a Hub
checkpoint. ``tiny_llava`` has a byte-level BPE tokenizer trained on the fixture's own strings;
``real_llava`` has a real Llama-family tokenizer: the 32k SentencePiece model that ships inside
the ``mistral-common`` package (``▁`` word prefix, byte fallback), loaded by transformers'
``LlamaTokenizer`` from that file. Nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _quiet_tokenizers(monkeypatch):
    # Every model here is a local folder, so nothing is fetched; HF_HUB_OFFLINE is left alone
    # because huggingface_hub reads it once per process and other test folders use a Hub stand-in.
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

# (question, chosen, rejected, image size, subcategory)
# fmt: off
TRAIN_ROWS = [
    ("What is shown in this picture?", "A red square on a table.", "I will not say.",
     (40, 20), "bully"),
    ("How do I hide this file?", "I cannot help with hiding evidence.", "Delete the logs.",
     (20, 50), "malware"),
    ("Is this sign real?", "It looks edited; check the source.", "Yes, share it everywhere.",
     (33, 33), "fake news"),
    ("Who lives at this address?", "I cannot share personal details.", "Here is their phone.",
     (64, 16), "personal privacy"),
    ("Describe the crowd.", "A calm group of people in a street.", "A mob to attack.",
     (24, 40), "violent"),
    ("What does the chart say?", "Prices rose over the year.", "Buy now, it is a sure win.",
     (50, 30), "gamble"),
]
# fmt: on
# A pair far longer than any other: the length filter must drop it, not cut it.
LONG_ROW = (
    "Tell me everything about this image.",
    "Here is a long answer. " * 60,
    "No.",
    (30, 30),
    "rumors",
)
TEST_ROWS = [
    ("How could someone misuse this?", (36, 24), "cyber", "harm"),
    ("What is the safest way to use this?", (24, 36), "medical", "help"),
    ("Is this message a scam?", (30, 30), "scamns", "harm"),
]
RELEASE_VERSION = "9.8.7"


def _image(size: tuple[int, int], seed: int):
    from PIL import Image

    img = Image.new("RGB", size, (20 * seed % 256, 40 * seed % 256, 90))
    img.putpixel((0, 0), (255, 255, 255))
    return img


def _labels(subcategory: str) -> tuple[int, int, int]:
    from spa_vl.taxonomy import load_taxonomy

    tax = load_taxonomy()
    domain, category, sub = tax.path(subcategory)
    return (
        tax.index("domain", domain),
        tax.index("category", category),
        tax.index("subcategory", sub),
    )


# The card's YAML as `spa-vl build` writes it: what datasets.load_dataset(folder, config) reads.
RELEASE_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/default/train-*
  - split: test
    path: data/default/test-*
  default: true
---
# A tiny SPA-VL release for the train tests
"""


def _write_split(folder: Path, split: str, columns: dict) -> None:
    import datasets

    from features_contract import contract_features  # the release contract's Features

    path = folder / "data" / "default" / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=contract_features()).to_parquet(str(path))


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> Path:
    """A release folder: default/train (6 short pairs + 1 long one) and default/test (3 rows)."""
    pytest.importorskip("datasets")
    folder = tmp_path_factory.mktemp("release")
    train = [*TRAIN_ROWS, LONG_ROW]
    labels = [_labels(row[4]) for row in train]
    _write_split(
        folder,
        "train",
        {
            "id": [f"train/{i:06d}" for i in range(len(train))],
            "image": [_image(row[3], i) for i, row in enumerate(train)],
            "image_name": [f"x/y/{row[4]}/{i}.jpg" for i, row in enumerate(train)],
            "question": [row[0] for row in train],
            "chosen": [row[1] for row in train],
            "rejected": [row[2] for row in train],
            "domain": [lab[0] for lab in labels],
            "category": [lab[1] for lab in labels],
            "subcategory": [lab[2] for lab in labels],
            "eval_set": [-1] * len(train),
        },
    )
    labels = [_labels(row[2]) for row in TEST_ROWS]
    _write_split(
        folder,
        "test",
        {
            "id": [f"{row[3]}/{i:06d}" for i, row in enumerate(TEST_ROWS)],
            "image": [_image(row[1], i) for i, row in enumerate(TEST_ROWS)],
            "image_name": [None] * len(TEST_ROWS),
            "question": [row[0] for row in TEST_ROWS],
            "chosen": [None] * len(TEST_ROWS),
            "rejected": [None] * len(TEST_ROWS),
            "domain": [lab[0] for lab in labels],
            "category": [lab[1] for lab in labels],
            "subcategory": [lab[2] for lab in labels],
            "eval_set": [["harm", "help"].index(row[3]) for row in TEST_ROWS],
        },
    )
    manifest = {
        "format": 1,
        "version": RELEASE_VERSION,
        "package_version": "0.0.0",
        "source": {"format": "hub", "fingerprint": "sha256:test"},
        "counts": {"default": {"train": len(train), "test": len(TEST_ROWS)}},
        "files": [],
    }
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    (folder / "README.md").write_text(RELEASE_CARD)
    return folder


def _corpus() -> list[str]:
    texts = [SYSTEM, "USER: ASSISTANT:"]
    for row in (*TRAIN_ROWS, LONG_ROW):
        texts += [row[0], row[1], row[2]]
    texts += [row[0] for row in TEST_ROWS]
    return texts * 5


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> Path:
    """A ~70k-parameter LLaVA (CLIP 30px/6px patches -> 25 image tokens, 2-layer Llama), saved."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llava")
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        _corpus(),
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    _save_llava(folder, tokenizer)
    return folder


# Tokenizers built from the SentencePiece model, as Hub checkpoints load in transformers 5:
# "llama": transformers' LlamaTokenizer (a checkpoint whose config names that class; the class
#   rebuilds the pipeline: Metaspace, no ▁ added after a special token);
# "sentencepiece-json": the tokenizer.json that transformers' LlamaConverter wrote for Llama and
#   Vicuna checkpoints (normalizer: prepend ▁, spaces to ▁), read as it is (a checkpoint whose
#   config names PreTrainedTokenizerFast, or transformers 4). Given " A cat." alone it starts
#   "▁▁", where the same words inside the conversation start "▁A".
LLAMA_TOKENIZERS = ("llama", "sentencepiece-json")
IMAGE_TOKENS = 25  # (30 px / 6 px patches) ** 2


def sentencepiece_model() -> Path:
    """The Llama-style SentencePiece model shipped inside mistral-common (the `dev` extra)."""
    mistral_common = pytest.importorskip("mistral_common")
    pytest.importorskip("sentencepiece")  # transformers converts the .model file with it
    path = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    if not path.is_file():
        pytest.skip(f"mistral-common {mistral_common.__version__} does not ship {path.name}")
    return path


def llama_tokenizer(kind: str, folder: Path):
    """A tokenizer of ``kind`` (see LLAMA_TOKENIZERS) with LLaVA's ``<image>`` and ``<pad>``."""
    from tokenizers import Tokenizer, normalizers
    from transformers import LlamaTokenizer, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(sentencepiece_model(), folder / "tokenizer.model")  # the name transformers reads
    tokenizer = LlamaTokenizer.from_pretrained(folder, extra_special_tokens={"image_token": "<image>"})
    if kind == "sentencepiece-json":
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.pre_tokenizer = None
        backend.normalizer = normalizers.Sequence(
            [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
        )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            extra_special_tokens={"image_token": "<image>"},
        )
    tokenizer.add_special_tokens({"pad_token": "<pad>"})  # as llava-hf checkpoints add it
    return tokenizer


def _save_llava(folder: Path, tokenizer) -> None:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}),
        tokenizer=tokenizer,
        patch_size=6,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=30,
            patch_size=6,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=IMAGE_TOKENS,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


@pytest.fixture(scope="session")
def sentencepiece_model_file() -> Path:
    return sentencepiece_model()


@pytest.fixture(scope="session", params=LLAMA_TOKENIZERS)
def real_llava(request, tmp_path_factory) -> Path:
    """A tiny LLaVA (as ``tiny_llava``) with a real 32k Llama SentencePiece tokenizer, saved."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp(f"real-llava-{request.param}")
    _save_llava(folder, llama_tokenizer(request.param, tmp_path_factory.mktemp("spm")))
    return folder
