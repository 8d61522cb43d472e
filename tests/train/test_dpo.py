"""DPO on a tiny LLaVA through ``spa-vl train``: loss, updates, LoRA, generation, run card."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.train

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402

from spa_vl.cli import main  # noqa: E402

# Two short steps on CPU: fp32, no checkpointing, a learning rate big enough to see the update.
FAST = [
    "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", "--learning-rate", "1e-3",
    "--warmup-steps", "0", "--logging-steps", "1", "--no-bf16", "--no-gradient-checkpointing",
    "--quiet",
]  # fmt: skip
JSONL_KEYS = {"id", "eval_set", "labels", "question", "response"}


def _dpo(model: Path, data: Path, out: Path, *extra: str) -> int:
    argv = ["train", "dpo", "--model", str(model), "--data", str(data), "--output-dir", str(out)]
    return main([*argv, *FAST, *extra])


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def trained(tiny_llava, release, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dpo")
    assert _dpo(tiny_llava, release, out) == 0
    return out


@pytest.fixture(scope="module")
def lora(tiny_llava, release, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lora")
    assert _dpo(tiny_llava, release, out, "--lora", "--lora-r", "4", "--lora-alpha", "8") == 0
    return out


def test_first_loss_is_ln2_and_rewards_start_at_zero(trained):
    logs = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    steps = [entry for entry in logs if "loss" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    # The reference is the policy at step 0, so every log-ratio is 0 and the loss -log sigmoid(0).
    assert abs(steps[0]["loss"] - math.log(2)) < 1e-4
    assert abs(steps[0]["rewards/margins"]) < 1e-6
    logged = {"rewards/accuracies", "rewards/chosen", "rewards/rejected", "logps/chosen"}
    assert logged <= set(steps[0]) and "logps/rejected" in steps[0]
    # After one update on these pairs the policy has moved away from the reference.
    assert steps[1]["rewards/margins"] != 0


def test_projector_and_language_model_change_vision_tower_does_not(tiny_llava, trained):
    before, after = _weights(tiny_llava), _weights(trained)
    assert before.keys() == after.keys()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    vision = [n for n in before if "vision_tower" in n]
    projector = [n for n in before if "multi_modal_projector" in n]
    layers = [n for n in before if "language_model" in n and ".layers." in n]
    assert vision and projector and layers
    assert not changed & set(vision)
    assert set(projector) <= changed
    assert set(layers) <= changed
    assert any("lm_head" in n for n in changed)


def test_run_card_records_data_hyperparameters_and_versions(trained, release):
    import trl

    card = json.loads((trained / "run_card.json").read_text())
    data = card["data"]
    assert data["config"] == "default" and data["split"] == "train"
    assert data["release"]["version"] == "9.8.7"  # the fixture's MANIFEST.json
    assert (data["rows"], data["kept"], data["dropped_too_long"]) == (7, 7, 0)
    assert data["image_tokens"] == 25  # (30 / 6) ** 2 patches
    hp = card["hyperparameters"]
    assert (hp["beta"], hp["learning_rate"], hp["max_length"]) == (0.1, 1e-3, 2048)
    assert hp["bf16"] is False and hp["effective_batch_size"] == 2
    assert card["packages"]["trl"] == trl.__version__
    assert card["results"]["global_step"] == 2
    assert card["model"]["frozen"] == ["vision_tower"]
    # The processor is saved with the LLaVA-1.5 template, so the output folder is self-contained.
    saved = json.loads((trained / "processor_config.json").read_text()).get("chat_template", "")
    saved = saved or (trained / "chat_template.jinja").read_text()
    assert "eos_token" in saved and "ASSISTANT" in saved


def test_generate_writes_one_wellformed_line_per_test_row(trained, release, tmp_path):
    import datasets

    from spa_vl.taxonomy import load_taxonomy

    out = tmp_path / "answers.jsonl"
    argv = ["train", "generate", "--model", str(trained), "--data", str(release), "--out", str(out)]
    assert main([*argv, "--max-new-tokens", "5", "--batch-size", "2", "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # The truth, read straight from the fixture's parquet, not through the code under test.
    test = datasets.Dataset.from_parquet(str(release / "data/default/test-00000-of-00001.parquet"))
    assert len(lines) == len(test)
    tax = load_taxonomy()
    for line, row in zip(lines, test, strict=True):
        assert set(line) == JSONL_KEYS
        assert line["id"] == row["id"] and line["question"] == row["question"]
        assert line["eval_set"] == ["harm", "help"][row["eval_set"]]
        sub = tax.names("subcategory")[row["subcategory"]]
        assert tuple(line["labels"].values()) == tax.path(sub)
        assert list(line["labels"]) == ["domain", "category", "subcategory"]
        assert isinstance(line["response"], str)


def test_lora_saves_language_model_adapters_and_the_projector(tiny_llava, lora):
    # The reference is the base model (adapters, projector copy included, switched off): ln 2 first.
    first = json.loads((lora / "metrics.jsonl").read_text().splitlines()[0])
    assert abs(first["loss"] - math.log(2)) < 1e-4
    config = json.loads((lora / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == tiny_llava
    weights = load_file(str(lora / "adapter_model.safetensors"))
    lora_keys = [k for k in weights if "lora_" in k]
    projector = [k for k in weights if "multi_modal_projector" in k]
    assert lora_keys and projector
    assert all("language_model" in k for k in lora_keys)
    assert not [k for k in weights if "vision_tower" in k]
    assert not (lora / "model.safetensors").exists()
    # The projector was trained: its saved copy differs from the base model's.
    base = _weights(tiny_llava)
    suffix = "multi_modal_projector.linear_1.weight"
    saved = next(v for k, v in weights.items() if k.endswith(suffix))
    original = next(v for k, v in base.items() if k.endswith(suffix))
    assert not torch.equal(saved, original)


def test_lora_adapter_reloads_and_generates(lora, release, tmp_path):
    out = tmp_path / "lora.jsonl"
    argv = ["train", "generate", "--model", str(lora), "--data", str(release), "--out", str(out)]
    assert main([*argv, "--max-new-tokens", "4", "--limit", "2", "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and all(set(line) == JSONL_KEYS for line in lines)


def test_lora_output_loads_through_transformers_as_peft_loads_it(tiny_llava, lora):
    """transformers' adapter loading (what `generate` uses) gives the model PeftModel gives:
    base + LoRA + the trained projector, not the base model."""
    from peft import PeftModel
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from spa_vl.train.generate import load_for_generation

    model, processor = load_for_generation(str(lora), "cpu", torch.float32)
    reference = PeftModel.from_pretrained(
        AutoModelForImageTextToText.from_pretrained(str(tiny_llava)), str(lora)
    ).eval()
    base = AutoModelForImageTextToText.from_pretrained(str(tiny_llava)).eval()
    inputs = processor(
        text=["<s>USER: <image>\nWhat is it? ASSISTANT:"],
        images=[Image.new("RGB", (30, 20), (200, 10, 10))],
        add_special_tokens=False,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(**inputs).logits
        assert torch.allclose(logits, reference(**inputs).logits, atol=1e-6)
        assert not torch.allclose(logits, base(**inputs).logits, atol=1e-4)


def test_to_trl_trains_with_trls_own_trainer_and_collator(tiny_llava, release, tmp_path):
    """The README's own-script example: to_trl's columns as TRL's DPOTrainer reads them."""
    import datasets
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig, DPOTrainer

    from spa_vl.train import to_trl
    from spa_vl.train.template import use_llava_template

    train = to_trl(datasets.load_dataset(str(release), "default", split="train[:4]"))
    trainer = DPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(str(tiny_llava)),
        args=DPOConfig(
            output_dir=str(tmp_path),
            max_steps=1,
            per_device_train_batch_size=2,
            report_to="none",
            use_cpu=True,
            bf16=False,
            disable_tqdm=True,
        ),
        train_dataset=train,
        processing_class=use_llava_template(AutoProcessor.from_pretrained(str(tiny_llava))),
    )
    trainer.train()
    assert trainer.state.global_step == 1
    assert abs(trainer.state.log_history[-1]["train_loss"] - math.log(2)) < 1e-4


def test_plain_torch_dpo_loss_equals_trl(tiny_llava, release, tmp_path):
    import torch.nn.functional as F

    from spa_vl.train.dpo import build_trainer
    from spa_vl.train.settings import DPOSettings

    settings = DPOSettings(
        model=str(tiny_llava),
        data=str(release),
        output_dir=str(tmp_path),
        batch_size=3,
        grad_accum=1,
        max_steps=1,
        bf16=False,
        gradient_checkpointing=False,
        quiet=True,
    )
    trainer, _ = build_trainer(settings)
    # Move the policy off the reference so the loss is not the trivial ln 2.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn(param.shape, generator=generator))
    batch = next(iter(trainer.get_train_dataloader()))
    trl_loss = trainer.compute_loss(trainer.model, batch).item()

    def sequence_logps(model) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "completion_mask"}
        with torch.no_grad():
            logits = model(**inputs).logits[:, :-1].float()
        targets = batch["input_ids"][:, 1:]
        mask = batch["completion_mask"][:, 1:].bool()
        token_logps = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (token_logps * mask).sum(-1)

    policy_chosen, policy_rejected = sequence_logps(trainer.model).chunk(2)
    ref_chosen, ref_rejected = sequence_logps(trainer.ref_model).chunk(2)
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    plain = -F.logsigmoid(0.1 * margin).mean().item()
    assert abs(plain - math.log(2)) > 1e-3
    assert plain == pytest.approx(trl_loss, abs=1e-5)
