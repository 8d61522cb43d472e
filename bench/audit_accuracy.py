"""Accuracy of the contamination audit: plant transformed eval items, count what is found.

Text: real AdvBench goals and FigStep SafeBench questions (../shared/evalsets) are planted into
the synthetic sample's train questions under each transformation; images: the sample's test
images (as an eval set) and FigStep-like typographic images are planted into train under
re-encoding, resizing, cropping, grayscale and a flip. Recall = planted rows matched to their
own eval item; precision = flagged rows that were planted and matched to the right item. Every
row of the sample that is not planted is a chance for a false positive.

    python bench/audit_accuracy.py [--per-transform 200] [--background 5000] [--near-threshold X ...]
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import textwrap
import time
from dataclasses import fields, replace
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from spa_vl.audit.core import fingerprint_batch, match_batch, match_rows
from spa_vl.audit.engine import build_index
from spa_vl.audit.evalsets import EvalItem, EvalSet, load_eval_set
from spa_vl.audit.normalize import normalize_text
from spa_vl.audit.settings import AuditSettings
from spa_vl.sample import SampleSpec, generate

EVALSETS = Path(__file__).resolve().parents[2] / "shared" / "evalsets"
FILLER = [
    "Look at the picture carefully.",
    "Please answer in detail and be specific.",
    "This is for a school project about online safety.",
    "I am writing a novel and need realistic details for one chapter.",
    "Answer as briefly as you can.",
]
WRAPPERS = [
    ("Rewritten Question: ", ""),
    ("Question: ", ""),
    ("Human: ", "\nAssistant:"),
    ("<image>\n", ""),
    ('"', '"'),
    ("USER: ", " ASSISTANT:"),
]
REPLACEMENT_WORDS = ["carefully", "quickly", "secretly", "online", "people", "someone", "detailed"]


def _words(text: str) -> list[str]:
    return text.split()


def t_exact(t: str, rng: random.Random) -> str:
    return t


def t_case(t: str, rng: random.Random) -> str:
    return rng.choice([t.upper(), t.lower(), t.title(), t.swapcase()])


def t_punctuation(t: str, rng: random.Random) -> str:
    stripped = re.sub(r"[^\w\s]", "", t)
    return rng.choice([stripped, stripped + "?", t.replace(" ", ", ", 1) + "!", t + "??"])


def t_whitespace(t: str, rng: random.Random) -> str:
    w = _words(t)
    return rng.choice(["  ", "\t", "\n", " \u00a0"]).join(w) + rng.choice(["", " ", "\n"])


def t_wrapper(t: str, rng: random.Random) -> str:
    pre, post = rng.choice(WRAPPERS)
    return pre + t + post


def t_word_changed(t: str, rng: random.Random) -> str:
    w = _words(t)
    i = rng.randrange(len(w))
    w[i] = rng.choice([x for x in REPLACEMENT_WORDS if x != w[i].lower()])
    return " ".join(w)


def t_word_dropped(t: str, rng: random.Random) -> str:
    w = _words(t)
    del w[rng.randrange(len(w))]
    return " ".join(w)


def t_typo(t: str, rng: random.Random) -> str:
    w = _words(t)
    long = [i for i, x in enumerate(w) if len(x) >= 4] or [0]
    i = rng.choice(long)
    x = w[i]
    j = rng.randrange(1, max(2, len(x) - 1))
    w[i] = rng.choice([x[:j] + x[j + 1 :], x[: j - 1] + x[j] + x[j - 1] + x[j + 1 :], x[:j] + "x" + x[j:]])
    return " ".join(w)


def t_added_sentence(t: str, rng: random.Random) -> str:
    s = rng.choice(FILLER)
    return f"{s} {t}" if rng.random() < 0.5 else f"{t} {s}"


def t_truncation(t: str, rng: random.Random) -> str:
    w = _words(t)
    return " ".join(w[: max(1, round(len(w) * 0.7))])


# one word said in several (issue 16: "How ..." -> "In what way ...")
PHRASES = {
    "how": "in what way", "write": "put together", "create": "come up with", "develop": "come up with",
    "provide": "give me", "give": "hand over", "explain": "lay out", "make": "put together",
    "design": "draw up", "teach": "show people", "generate": "churn out", "describe": "go over",
    "outline": "sketch out", "use": "make use of", "tutorial": "step by step guide",
    "guide": "how-to manual", "someone": "a person", "instructions": "set of instructions",
    "website": "web site", "program": "computer program", "steps": "individual steps",
}  # fmt: skip


def t_phrase(t: str, rng: random.Random) -> str:
    w = _words(t)
    sites = [i for i, x in enumerate(w) if x.lower().strip(",.?!") in PHRASES]
    if sites:
        i = rng.choice(sites)
        phrase = PHRASES[w[i].lower().strip(",.?!")]
        w[i] = phrase.capitalize() if i == 0 else phrase
    else:  # a word replaced by two others
        i = rng.randrange(len(w))
        w[i] = " ".join(rng.sample(REPLACEMENT_WORDS, 2))
    return " ".join(w)


INITIALISM = re.compile(r"\b[A-Z]{2,5}\b")


def t_abbreviation(t: str, rng: random.Random) -> str:
    """Initialisms dotted ("VPN" -> "V.P.N." / "v.p.n."); planted only into texts that have one."""
    style = rng.choice(["upper", "lower", "no final dot"])

    def dotted(m: re.Match) -> str:
        d = ".".join(m.group()) + ("" if style == "no final dot" else ".")
        return d.lower() if style == "lower" else d

    return INITIALISM.sub(dotted, t)


# transformations that apply to some texts only, and the share of --per-transform they plant
TEXT_POOLS = {"abbreviation": (lambda t: bool(INITIALISM.search(t)), 0.25)}


TEXT_TRANSFORMS = {
    f.__name__[2:]: f
    for f in (
        t_exact,
        t_case,
        t_punctuation,
        t_whitespace,
        t_wrapper,
        t_word_changed,
        t_word_dropped,
        t_typo,
        t_added_sentence,
        t_truncation,
        t_phrase,
        t_abbreviation,
    )
}


def _jpeg(im: Image.Image, quality: int = 50) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def i_reencode(im):
    return _jpeg(im, 50)


def i_png(im):  # lossless re-encode: the pixel-exact tier
    return _png(im)


def i_resize(im):
    return _png(im.resize((max(8, im.width // 2), max(8, im.height // 2)), Image.Resampling.LANCZOS))


def i_crop(im):
    dx, dy = round(im.width * 0.05), round(im.height * 0.05)
    return _png(im.crop((dx, dy, im.width - dx, im.height - dy)))


def i_grayscale(im):
    return _png(im.convert("L"))


def i_flip(im):
    return _png(ImageOps.mirror(im))


IMAGE_TRANSFORMS = {f.__name__[2:]: f for f in (i_png, i_reencode, i_resize, i_crop, i_grayscale, i_flip)}


def typographic_images(texts: list[str], size: int = 256) -> list[bytes]:
    """FigStep-style images: the instruction typed on white with numbered empty steps."""
    out = []
    for text in texts:
        im = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(im)
        lines, line = [], ""
        for word in text.split():
            if len(line) + len(word) > 28:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines += [line, "1.", "2.", "3."]
        for k, ln in enumerate(lines):
            draw.text((12, 12 + 18 * k), ln, fill="black")
        out.append(_png(im))
    return out


def text_eval_sets() -> list[EvalSet]:
    return [
        load_eval_set("advbench", EVALSETS / "advbench" / "harmful_behaviors.csv"),
        load_eval_set("figstep", EVALSETS / "figstep_safebench" / "safebench.csv"),
    ]


def run_audit(rows: dict[str, list], eval_sets: list[EvalSet], settings: AuditSettings) -> list[dict]:
    fb = fingerprint_batch(rows, settings)
    index, _ = build_index([fb], eval_sets, settings)
    return match_rows(match_batch(fb, index))


def score(matches: list[dict], planted: dict[str, tuple[str, set[str]]], field_: str) -> dict:
    """Per transformation: planted, found (right item), flagged rows, false positives."""
    by_row: dict[str, list[dict]] = {}
    for m in matches:
        if m["field"] == field_:
            by_row.setdefault(m["source_id"], []).append(m)
    stats: dict[str, dict[str, int]] = {}
    for sid, (transform, targets) in planted.items():
        st = stats.setdefault(transform, {"planted": 0, "found": 0, "flagged": 0, "wrong": 0})
        st["planted"] += 1
        ms = by_row.get(sid, [])
        st["flagged"] += bool(ms)
        right = any(m["eval_id"] in targets for m in ms)
        st["found"] += right
        st["wrong"] += bool(ms) and not right
    background_fp = sum(1 for sid in by_row if sid not in planted)
    return {"per_transform": stats, "background_false_positives": background_fp}


def print_table(title: str, result: dict, background: int) -> tuple[float, float]:
    print(f"\n{title}")
    print(f"{'transformation':<16}{'planted':>8}{'recall':>8}{'precision':>10}  missed")
    tp = fl = pl = 0
    for name, st in result["per_transform"].items():
        flagged = st["flagged"]
        prec = st["found"] / flagged if flagged else 1.0
        print(
            f"{name:<16}{st['planted']:>8}{st['found'] / st['planted']:>8.3f}{prec:>10.3f}  "
            f"{st['planted'] - st['found']}"
        )
        tp += st["found"]
        fl += flagged
        pl += st["planted"]
    fp = result["background_false_positives"]
    recall, precision = tp / pl, tp / (fl + fp) if fl + fp else 1.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    print(
        f"{'overall':<16}{pl:>8}{recall:>8.3f}{precision:>10.3f}  F1 {f1:.3f} "
        f"(background rows: {background}, false positives among them: {fp})"
    )
    return recall, precision


def bench_text(args, settings: AuditSettings, background: list[str]) -> tuple[float, float]:
    eval_sets = text_eval_sets()
    rng = random.Random(args.seed)
    pool = [(es.name, it) for es in eval_sets for it in es.items if it.field in ("goal", "question")]
    # an eval text may be duplicated inside its set: any item with the same normalised text is right
    same: dict[str, set[str]] = {}
    for es in eval_sets:
        for it in es.items:
            same.setdefault(normalize_text(it.text), set()).add(it.id)
    rows = {"id": [], "split": [], "question": []}
    for k, q in enumerate(background):
        rows["id"].append(f"train/{k:06d}")
        rows["split"].append("train")
        rows["question"].append(q)
    planted: dict[str, tuple[str, set[str]]] = {}
    for name, fn in TEXT_TRANSFORMS.items():
        keep, share = TEXT_POOLS.get(name, (None, 1.0))
        if keep is None:
            picks = rng.sample(pool, args.per_transform)
        else:  # few texts qualify: each planted several times, in another variant
            picks = rng.choices([p for p in pool if keep(p[1].text)], k=round(args.per_transform * share))
        for k, (_set, item) in enumerate(picks):
            sid = f"plant/{name}/{k:04d}"
            rows["id"].append(sid)
            rows["split"].append("train")
            rows["question"].append(fn(item.text, rng))
            planted[sid] = (name, same[normalize_text(item.text)])
    t0 = time.perf_counter()
    matches = run_audit(rows, eval_sets, replace(settings, scopes=("eval",)))
    dt = time.perf_counter() - t0
    result = score(matches, planted, "question")
    recall, precision = print_table(
        "Text (AdvBench goals + FigStep questions planted)", result, len(background)
    )
    print(f"({len(rows['id'])} rows against {sum(es.n_texts for es in eval_sets)} eval texts in {dt:.2f} s)")
    if args.show_misses:
        hit = {m["source_id"] for m in matches if m["eval_id"] in planted.get(m["source_id"], ("", set()))[1]}
        for sid, (name, _) in planted.items():
            if sid not in hit:
                print(f"  missed {name}: {rows['question'][rows['id'].index(sid)]!r}")
    return recall, precision


def bench_images(args, settings: AuditSettings) -> None:
    spec = SampleSpec(train=args.image_background, seed=args.seed, image_size=args.image_size)
    sample = list(generate(spec))
    train = [r for r in sample if r.split == "train"]
    test = [r for r in sample if r.split == "test"]
    figstep = load_eval_set("figstep", EVALSETS / "figstep_safebench" / "safebench.csv")
    instructions = [it for it in figstep.items if it.field == "instruction"][: args.typographic]
    typo = typographic_images([it.text for it in instructions])
    eval_sets = [
        EvalSet(
            "harmeval",
            "spa-vl",
            Path("sample"),
            [EvalItem(r.id, "image", r.question, image=r.image, image_label=r.image_name) for r in test],
        ),
        EvalSet(
            "figstep-images",
            "figstep",
            Path("rendered"),
            [
                EvalItem(it.id, "image", it.text, image=b, image_label=it.id)
                for it, b in zip(instructions, typo, strict=True)
            ],
        ),
    ]
    sources = [(es.name, it) for es in eval_sets for it in es.items]
    rng = random.Random(args.seed + 1)
    rows = {"id": [], "split": [], "question": [], "image": []}
    for r in train:
        rows["id"].append(r.id)
        rows["split"].append("train")
        rows["question"].append(r.question)
        rows["image"].append(r.image)
    planted = {}
    for name, fn in IMAGE_TRANSFORMS.items():
        for k, (_set, item) in enumerate(rng.sample(sources, min(args.per_image_transform, len(sources)))):
            with Image.open(io.BytesIO(item.image)) as im:
                data = fn(im.convert("RGB") if im.mode not in ("RGB", "L") else im.copy())
            sid = f"plant/{name}/{k:04d}"
            rows["id"].append(sid)
            rows["split"].append("train")
            rows["question"].append("planted")
            rows["image"].append(data)
            planted[sid] = (f"{name}/{_set}" if not args.pooled else name, {item.id})
    for flips in (False, True):
        s = replace(settings, images=True, flips=flips, scopes=("eval",), near=False)
        t0 = time.perf_counter()
        matches = run_audit(rows, eval_sets, s)
        dt = time.perf_counter() - t0
        result = score(matches, planted, "image")
        print_table(
            f"Images (sample test images + {len(typo)} typographic images), flips={flips}", result, len(train)
        )
        print(f"({len(rows['id'])} images in {dt:.2f} s)")
    if args.show_distances:
        _distances(rows, planted, eval_sets, settings)


def _distances(rows, planted, eval_sets, settings) -> None:
    """Distance distributions: planted copies to their original vs. to unrelated images."""
    from spa_vl.audit.image import hamming, hash_image

    ref = {it.id: hash_image(it.image) for es in eval_sets for it in es.items}
    ref_p = np.array([h.phash for h in ref.values()], np.uint64)
    ref_d = np.array([h.dhash for h in ref.values()], np.uint64)
    for name in IMAGE_TRANSFORMS:
        dp, dd = [], []
        for sid, img in zip(rows["id"], rows["image"], strict=True):
            if planted.get(sid, ("",))[0].split("/")[0] == name:
                h, o = hash_image(img), ref[next(iter(planted[sid][1]))]
                dp.append(int(hamming(np.uint64(h.phash), np.uint64(o.phash))))
                dd.append(int(hamming(np.uint64(h.dhash), np.uint64(o.dhash))))
        print(
            f"  {name:<10} pHash p50/p95/max "
            f"{np.percentile(dp, 50):.0f}/{np.percentile(dp, 95):.0f}/{max(dp)}"
            f"  dHash {np.percentile(dd, 50):.0f}/{np.percentile(dd, 95):.0f}/{max(dd)}"
        )
    bg = [hash_image(img) for sid, img in zip(rows["id"], rows["image"], strict=True) if sid not in planted]
    bp = hamming(np.array([h.phash for h in bg], np.uint64)[:, None], ref_p[None, :])
    bd = hamming(np.array([h.dhash for h in bg], np.uint64)[:, None], ref_d[None, :])
    both = np.maximum(bp - settings.phash_threshold, bd - settings.dhash_threshold)
    print(
        f"  unrelated pairs: pHash min {bp.min()}, p0.1% {np.percentile(bp, 0.1):.0f}; dHash min {bd.min()},"
        f" p0.1% {np.percentile(bd, 0.1):.0f}; pairs within both thresholds {(both <= 0).sum()}"
    )


# --------------------------------------------------------------------------- typographic (OCR)

FONTS = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
FIGSTEP_FONT = "DejaVuSans.ttf"  # the renders every planted copy starts from
OTHER_FONTS = ("DejaVuSerif.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif-Italic.ttf")


def figstep_render(text: str, rng: random.Random, font: str = FIGSTEP_FONT, size: int = 512) -> Image.Image:
    """FigStep's layout: the instruction typed on white, wrapped, then empty steps 1. 2. 3."""
    fs = rng.randint(size // 19, size // 13)  # 27-39 px glyphs on a 512 px page
    pil_font = ImageFont.truetype(str(FONTS / font), fs)
    margin = rng.randint(size // 32, size // 13)
    im = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(im)
    lines: list[str] = []
    for word in text.split():  # wrap to the page width as measured in this font
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=pil_font) <= size - 2 * margin:
            lines[-1] = trial
        else:
            lines.append(word)
    y = margin
    for ln in [*lines, "1.", "2.", "3."]:
        draw.text((margin, y), ln, fill="black", font=pil_font)
        y += round(fs * 1.25)
    return im


def caption_photo(photo: bytes, text: str, rng: random.Random) -> Image.Image:
    """A photo with the text overlaid as a caption: white glyphs outlined in black."""
    with Image.open(io.BytesIO(photo)) as src:
        im = src.convert("RGB").resize((512, 512))
    fs = rng.randint(20, 26)
    pil_font = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), fs)
    draw = ImageDraw.Draw(im)
    lines: list[str] = []
    for word in text.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=pil_font) <= 512 - 24:
            lines[-1] = trial
        else:
            lines.append(word)
    y = 512 - 12 - round(fs * 1.3) * len(lines)
    for ln in lines:
        draw.text((12, y), ln, fill="white", font=pil_font, stroke_width=2, stroke_fill="black")
        y += round(fs * 1.3)
    return im


def o_jpeg(text, rng, photo):
    return _jpeg(figstep_render(text, rng), 50)


def o_resize(text, rng, photo):
    im = figstep_render(text, rng)
    return _png(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS))


def o_crop(text, rng, photo):
    im = figstep_render(text, rng)
    dx, dy = round(im.width * 0.05), round(im.height * 0.05)
    return _png(im.crop((dx, dy, im.width - dx, im.height - dy)))


def o_rerender(text, rng, photo):
    return _png(figstep_render(text, rng, font=rng.choice(OTHER_FONTS), size=rng.choice((384, 640, 760))))


def o_caption(text, rng, photo):
    return _jpeg(caption_photo(photo, text, rng), 85)


def o_figstep(text, rng, photo):
    """FigStep's own page: 760 px, bold monospace at 80 px from the top-left corner, 15
    characters a line (FreeMonoBold there; DejaVu Sans Mono Bold here); taller for texts
    longer than FigStep's instructions."""
    lines = [*textwrap.wrap(text, 15), "1.", "2.", "3."]
    im = Image.new("RGB", (760, max(760, 85 * len(lines) + 10)), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(str(FONTS / "DejaVuSansMono-Bold.ttf"), 80)
    for k, line in enumerate(lines):
        draw.text((0, 85 * k), line, fill="black", font=font)
    return _png(im)


OCR_TRANSFORMS = {f.__name__[2:]: f for f in (o_jpeg, o_resize, o_crop, o_rerender, o_caption, o_figstep)}


def bench_typographic(args, settings: AuditSettings) -> tuple[float, float]:
    """Typed eval texts (AdvBench goals, FigStep instructions and questions) planted as images
    among the sample's photo-like images and typed images of other texts; the OCR tier must
    name the eval item. Then the OCR tier's speed per core on photos and on typed pages."""
    from spa_vl.audit import ocr

    ocr.require_ocr()
    eval_sets = text_eval_sets()
    rng = random.Random(args.seed + 2)
    pool = [it for es in eval_sets for it in es.items if it.field in ("goal", "instruction", "question")]
    same: dict[str, set[str]] = {}
    for it in pool:
        same.setdefault(normalize_text(it.text), set()).add(it.id)
    spec = SampleSpec(train=args.ocr_photos, seed=args.seed, image_size=512)
    sample = [r for r in generate(spec) if r.split == "train"][: args.ocr_photos]
    photos = [r.image for r in sample]
    rows: dict[str, list] = {"id": [], "split": [], "question": [], "image": []}

    def add(sid: str, data: bytes) -> None:
        rows["id"].append(sid)
        rows["split"].append("train")
        rows["question"].append("What does the image say?")
        rows["image"].append(data)

    for r in sample:
        add(r.id, r.image)
    # typed pages and captions of texts that are no eval item: the sample's own questions and
    # AdvBench's harmful strings (harmful statements in the goals' vocabulary, not goals)
    import csv

    with open(EVALSETS / "advbench" / "harmful_strings.csv", encoding="utf-8", newline="") as f:
        strings = [r["target"] for r in csv.DictReader(f)]
    half = args.ocr_negatives // 2
    others = rng.sample([r.question for r in sample], min(half, len(sample)))
    others += rng.sample(strings, min(args.ocr_negatives - len(others), len(strings)))
    for k, q in enumerate(others):
        add(f"other/{k:04d}", rng.choice(list(OCR_TRANSFORMS.values()))(q, rng, rng.choice(photos)))
    background = len(rows["id"])
    planted: dict[str, tuple[str, set[str]]] = {}
    typed: set[tuple[str, str]] = set()
    for name, fn in OCR_TRANSFORMS.items():
        for k, item in enumerate(rng.sample(pool, args.ocr_per_transform)):
            sid = f"plant/{name}/{k:04d}"
            add(sid, fn(item.text, rng, rng.choice(photos)))
            planted[sid] = (name, same[normalize_text(item.text)])
            typed.add((item.id, item.text))
    s = replace(settings, ocr=True, images=False, scopes=("eval",), near=False)
    ocr._CACHE.clear()
    t0 = time.perf_counter()
    fb = fingerprint_batch(rows, s)
    t1 = time.perf_counter()
    index, _ = build_index([fb], eval_sets, s)
    matches = match_rows(match_batch(fb, index))
    t2 = time.perf_counter()
    result = score(matches, planted, "image")
    recall, precision = print_table(
        f"Typographic leaks, OCR tier ({len(pool)} eval texts typed; {len(photos)} photo-like "
        f"images and {len(others)} typed images of other texts as background)",
        result,
        background,
    )
    states = {st: fb["ocr_state"].count(st) for st in ocr.STATES}
    print(f"(OCR of {len(rows['id'])} images in {t1 - t0:.1f} s, {states}; matching {t2 - t1:.2f} s)")
    worst = min(st["found"] / st["planted"] for st in result["per_transform"].values())
    if args.show_misses:
        hit = {m["source_id"] for m in matches if m["eval_id"] in planted.get(m["source_id"], ("", set()))[1]}
        texts = dict(zip(fb["id"], fb["ocr_text"], strict=True))
        for sid in planted:
            if sid not in hit:
                print(f"  missed {sid}: read {texts[sid]!r}")
        for m in matches:
            if m["source_id"] not in planted:
                print(f"  background hit {m['source_id']}: {m['ocr_text']!r} -> {m['eval_text']!r}")
    _ocr_margins(fb, index, planted)
    if args.ocr_eval_images:
        _typed_eval_images(args, s, fb, pool, planted, typed)
    _ocr_speed(args, s, photos, rows, planted)
    print(f"OCR aim (recall >= 0.95 per transform, precision >= 0.99): "
          f"{'met' if worst >= 0.95 and precision >= 0.99 else 'NOT met'}")  # fmt: skip
    return recall, precision


def _ocr_margins(fb: dict, index, planted: dict) -> None:
    """How far the near threshold is from both sides: the score of the right eval text in each
    planted image, and the best score of any eval text in the background's typed images."""
    ocr_index = index.ocr
    right: dict[str, float] = {}
    best_bg: dict[str, float] = {}
    for h in ocr_index.search(fb["ocr_text"], near_threshold=0.5):
        sid = fb["id"][h.row]
        eval_id = index.texts.ids[int(ocr_index.ref_pos[h.entry])]
        if sid in planted and eval_id in planted[sid][1]:
            right[sid] = max(right.get(sid, 0.0), h.score)
        elif sid not in planted:
            best_bg[sid] = max(best_bg.get(sid, 0.0), h.score)
    per: dict[str, list[float]] = {}
    for sid, (name, _) in planted.items():
        per.setdefault(name, []).append(right.get(sid, 0.0))
    cells = ", ".join(f"{n} {min(v):.2f}/{np.percentile(v, 5):.2f}" for n, v in per.items())
    print(f"  score of the right eval text, min/p5: {cells}")
    bg = sorted(best_bg.values())
    typed_bg = sum(
        1 for sid, st in zip(fb["id"], fb["ocr_state"], strict=True) if sid not in planted and st == "read"
    )
    print(
        f"  background images read: {typed_bg}; best score of any eval text in them: "
        f"max {bg[-1] if bg else 0:.2f}, {sum(x >= 0.6 for x in bg)} at >= 0.6 (threshold "
        f"{index.settings.ocr_near_threshold})"
    )


def _typed_eval_images(args, s: AuditSettings, fb: dict, pool: list, planted: dict, typed: set) -> None:
    """The same planted images against an eval set of typed *images* only (a FigStep-style page
    of each planted text and of 100 others, no eval text): recognised text against recognised
    text. ``typed``: the (eval id, text) pairs that were planted."""
    rng = random.Random(args.seed + 4)
    pages = sorted(typed)
    rest = sorted({(it.id, it.text) for it in pool} - typed)
    pages += rng.sample(rest, min(100, len(rest)))
    items = [EvalItem(i, "image", None, image=_png(figstep_render(t, rng)), image_label=i) for i, t in pages]
    es = EvalSet("typed-eval-images", "figstep", Path("rendered"), items)
    t0 = time.perf_counter()
    index, _ = build_index([fb], [es], s)
    t1 = time.perf_counter()
    matches = match_rows(match_batch(fb, index))
    print_table(
        f"The same, against {len(items)} typed eval images (no eval text; their OCR in {t1 - t0:.0f} s)",
        score(matches, planted, "image"),
        len(fb["id"]) - len(planted),
    )


def _ocr_speed(args, s: AuditSettings, photos: list[bytes], rows: dict, planted: dict) -> None:
    """Images/s of the OCR step (gate + recognition) on one core, uncached: the sample's
    photo-like images, a real photo (matplotlib's grace_hopper.jpg) under 50 crops, typed pages."""
    from spa_vl.audit import ocr

    real = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    with Image.open(real) as im:
        rgb = im.convert("RGB")
    rng = random.Random(args.seed + 3)
    crops = []
    for _ in range(50):
        w = rng.randint(rgb.width // 2, rgb.width)
        h = rng.randint(rgb.height // 2, rgb.height)
        x, y = rng.randint(0, rgb.width - w), rng.randint(0, rgb.height - h)
        crops.append(_jpeg(rgb.crop((x, y, x + w, y + h)).resize((512, 512 * h // w)), 90))
    typed = [d for sid, d in zip(rows["id"], rows["image"], strict=True) if sid in planted][:40]
    for label, images in (("sample photos (512 px JPEG)", photos), ("real photo crops", crops),
                          ("typed pages", typed)):  # fmt: skip
        ocr._CACHE.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        _, _, states = ocr.read_images(images, s.ocr_gate)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        counts = {st: states.count(st) for st in ocr.STATES}
        # CPU time: one process, one onnxruntime thread, so images per CPU second = per core,
        # whatever else the machine runs; wall clock beside it
        print(f"  OCR speed, {label}: {len(images) / cpu:.1f} images/s per core "
              f"(CPU time; wall {len(images) / dt:.1f}/s) {counts}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-transform", type=int, default=200)
    parser.add_argument("--background", type=int, default=5000, help="sample train questions")
    parser.add_argument("--per-image-transform", type=int, default=100)
    parser.add_argument("--image-background", type=int, default=2000)
    parser.add_argument("--typographic", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=256, help="long side of sample images")
    parser.add_argument("--pooled", action="store_true", help="image results pooled over eval sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--show-distances", action="store_true")
    parser.add_argument("--no-images", action="store_true")
    ocr = parser.add_argument_group("typographic leaks (OCR tier; needs the ocr extra)")
    ocr.add_argument("--ocr", action="store_true", help="also run the typographic benchmark")
    ocr.add_argument("--ocr-only", action="store_true", help="run the typographic benchmark alone")
    ocr.add_argument("--ocr-per-transform", type=int, default=60)
    ocr.add_argument("--ocr-photos", type=int, default=1000, help="photo-like background images")
    ocr.add_argument("--ocr-negatives", type=int, default=100, help="typed images of other texts")
    ocr.add_argument("--ocr-eval-images", action="store_true", help="also against typed eval images")
    for f in fields(AuditSettings):
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    args = parser.parse_args(argv)
    settings = AuditSettings(
        **{f.name: getattr(args, f.name) for f in fields(AuditSettings) if hasattr(args, f.name)}
    )
    if args.ocr_only:
        bench_typographic(args, settings)
        return 0
    spec = SampleSpec(train=args.background, seed=args.seed)
    background = [r.question for r in generate(spec) if r.split == "train"]
    recall, precision = bench_text(args, settings, background)
    if not args.no_images:
        bench_images(args, settings)
    if args.ocr:
        bench_typographic(args, settings)
    ok = recall >= 0.95 and precision >= 0.99
    print(f"\ntext aim (recall >= 0.95, precision >= 0.99): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
