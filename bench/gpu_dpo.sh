#!/usr/bin/env bash
# DPO on one GPU (issues 8, 14): a random-initialised LLaVA-1.5-shaped model of ~360M parameters
# (CLIP ViT-B/14 at 336 px -> 576 image tokens, a 16-layer Llama of width 1024), bf16 over fp32
# master weights, 200 steps of batch 8 on the sample release (`spa-vl sample` + `spa-vl build`),
# through the same code as `spa-vl train dpo`. The tokenizer is the real 32k Llama SentencePiece
# model shipped in mistral-common (the `dev` extra) when it is installed, else a byte-level BPE
# trained on the release's text. Prints the GPU, samples/s, tokens/s, peak GPU memory and the
# loss, reward accuracy and margin over the steps. About 2-3 minutes on an H100; capped at 5.5.
#
#   bash bench/gpu_dpo.sh [WORKDIR]              # needs CUDA torch and the train extra
#   SMOKE=1 bash bench/gpu_dpo.sh                # a tiny model, 2 steps, CPU: checks the script
#
# Random weights, so the figures measure the pipeline (throughput, memory, that rewards move),
# not safety. Environment: PYTHON (default .venv/bin/python, else python3), STEPS (default 200).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3; fi
WORK="${1:-$(mktemp -d -t spa-vl-gpu-dpo.XXXXXX)}"
SMOKE="${SMOKE:-0}"
STEPS="${STEPS:-$([[ "$SMOKE" == 1 ]] && echo 2 || echo 200)}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$WORK"
echo "workdir: $WORK  python: $PY  steps: $STEPS  smoke: $SMOKE"

"$PY" - "$SMOKE" <<'EOF'
import importlib.util, sys
missing = [m for m in ("torch", "transformers", "trl", "peft", "accelerate") if not importlib.util.find_spec(m)]
if missing:
    sys.exit(f"missing {', '.join(missing)}: pip install -e '.[train]' (with a CUDA build of torch)")
import torch
if sys.argv[1] != "1" and not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible (SMOKE=1 runs a tiny CPU check of this script)")
EOF

start=$(date +%s)
"$PY" -m spa_vl.cli sample "$WORK/raw" --layout hub --seed 0 --quiet
"$PY" -m spa_vl.cli build "$WORK/raw" --out "$WORK/release" --quiet
echo "sample + build: $(( $(date +%s) - start )) s"

timeout 330 "$PY" - "$WORK" "$STEPS" "$SMOKE" <<'EOF'
import json, sys, time
from pathlib import Path

import importlib.util, shutil
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlamaTokenizer,
                          LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                          PreTrainedTokenizerFast)

from spa_vl.train.data import load_split
from spa_vl.train.dpo import train
from spa_vl.train.settings import DPOSettings
from spa_vl.train.template import LLAVA_15_SYSTEM

work, steps, smoke = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
release, model_dir = work / "release", work / "model"

# Nothing can be downloaded here: a Llama tokenizer that ships in a package, else one trained
# on the release's own text.
spec = importlib.util.find_spec("mistral_common")
spm = spec and Path(spec.origin).parent / "data" / "tokenizer.model.v1"
if spm and spm.is_file() and importlib.util.find_spec("sentencepiece"):
    (work / "spm").mkdir(exist_ok=True)
    shutil.copy(spm, work / "spm" / "tokenizer.model")
    tok = LlamaTokenizer.from_pretrained(work / "spm", extra_special_tokens={"image_token": "<image>"})
    tok.add_special_tokens({"pad_token": "<pad>"})
    tokenizer_name = "Llama SentencePiece 32k (mistral-common tokenizer.model.v1)"
else:
    rows = load_split(release, "default", "train")
    corpus = [LLAVA_15_SYSTEM, "USER: ASSISTANT:"]
    for column in ("question", "chosen", "rejected"):
        corpus += list(rows[column])
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=32000, special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>", pad_token="<pad>",
                                  extra_special_tokens={"image_token": "<image>"})
    tokenizer_name = "byte-level BPE trained on the release (mistral-common not installed)"
px, patch = (30, 6) if smoke else (336, 14)
vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2) \
    if smoke else dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12)
text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2) \
    if smoke else dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=16,
                       num_attention_heads=16, num_key_value_heads=16)
config = LlavaConfig(
    vision_config=CLIPVisionConfig(image_size=px, patch_size=patch, projection_dim=512, **vision),
    text_config=LlamaConfig(vocab_size=max(len(tok), 32064 if not smoke else 0),
                            max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **text),
    image_token_index=tok.convert_tokens_to_ids("<image>"),
    vision_feature_select_strategy="default", vision_feature_layer=-2,
    image_seq_length=(px // patch) ** 2,
)
torch.manual_seed(0)
model = LlavaForConditionalGeneration(config)
n_params = sum(p.numel() for p in model.parameters())
model.save_pretrained(model_dir)
LlavaProcessor(
    image_processor=CLIPImageProcessor(size={"shortest_edge": px},
                                       crop_size={"height": px, "width": px}),
    tokenizer=tok, patch_size=patch, vision_feature_select_strategy="default",
    num_additional_image_tokens=1,
).save_pretrained(model_dir)
del model

settings = DPOSettings(
    model=str(model_dir), data=str(release), output_dir=str(work / "out"),
    max_steps=steps, batch_size=8, grad_accum=1,
    # lr 1e-5 rather than the paper's 1e-6: a random model should visibly move in 200 steps.
    learning_rate=1e-5, warmup_steps=10, bf16=not smoke, gradient_checkpointing=True,
    logging_steps=1 if smoke else 10, quiet=True,
)
if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
card = train(settings)
wall = time.perf_counter() - t0
logs = [json.loads(line) for line in (work / "out" / "metrics.jsonl").read_text().splitlines()]
steps_logged = [e for e in logs if "loss" in e]

gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke)"
peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
res, data = card["results"], card["data"]
summary = next((e for e in reversed(logs) if "train_runtime" in e), {})
tokens = max((e.get("num_tokens", 0) for e in logs), default=0)
runtime = summary.get("train_runtime") or float("nan")
print(f"GPU: {gpu}")
print(f"tokenizer: {tokenizer_name}")
print(f"model: {n_params / 1e6:.0f}M parameters ({card['model']['trainable_parameters'] / 1e6:.0f}M "
      f"trainable), {data['image_tokens']} image tokens, bf16={card['hyperparameters']['bf16']}")
print(f"data: {data['kept']} of {data['rows']} pairs (longest {data['longest_pair']} tokens), "
      f"release {data['release'].get('version')}")
print(f"steps: {res['global_step']} x batch 8, train wall {wall:.0f} s (with model loading)")
print(f"samples/s: {res.get('train_samples_per_second')}")
print(f"tokens/s: {tokens / runtime:.0f} ({tokens:.0f} tokens, image tokens included, "
      f"in {runtime:.1f} s of training)")
print(f"peak GPU memory: {peak:.1f} GiB (torch max_memory_allocated)")
print("step  loss    reward_acc  margin")
for e in steps_logged:
    print(f"{e['step']:>4}  {e['loss']:.4f}  {e['rewards/accuracies']:.3f}       "
          f"{e['rewards/margins']:.4f}")
first = steps_logged[0]["loss"]
print(f"first loss {first:.5f} (ln 2 = 0.69315 when the reference is the step-0 policy)")
EOF
echo "total: $(( $(date +%s) - start )) s"
