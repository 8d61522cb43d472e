"""Speed of the contamination audit, one process (one core), against brute-force baselines.

Text: N train questions (the synthetic sample's generator: templated, so many near pairs, a
hard case for the candidate filter) against ~10k eval questions (AdvBench + FigStep + sample
questions from another seed). In the same run, the all-pairs baseline (score every pair with
the same rule) on a slice, extrapolated, and the matches of both on that slice compared.
Images: hashing throughput over N encoded images (JPEG, --image-size px), then the vectorised
Hamming search of all of them against a reference side of --eval-images images with variants,
and a Python double loop on a slice as baseline.

    python bench/audit_speed.py [--train 100000] [--eval 10000] [--images 100000] [--image-size 512]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from spa_vl.audit.core import MATCH_COLUMNS, fingerprint_batch, match_batch, match_rows
from spa_vl.audit.engine import build_index
from spa_vl.audit.evalsets import EvalItem, EvalSet, load_eval_set
from spa_vl.audit.image import ImageIndex, hash_image
from spa_vl.audit.normalize import normalize_text
from spa_vl.audit.settings import AuditSettings
from spa_vl.audit.text import NearRule, score_pair
from spa_vl.sample import SampleSpec, generate

EVALSETS = Path(__file__).resolve().parents[2] / "shared" / "evalsets"
BATCH = 4096


FUNCTION_WORDS = "the a of to and in is how what can i you this that for with on be it".split()


def questions(n: int, seed: int, kind: str = "diverse") -> list[str]:
    """``sample``: the sample's templated questions (a worst case: thousands of near pairs);
    ``diverse``: 8-30 words drawn from a Zipf-weighted 30k-word vocabulary plus function
    words, closer to the variety of real questions."""
    if kind == "sample":
        # tiny images: only the questions are used, and drawing big ones would dominate
        spec = SampleSpec(train=n, validation_per_sub=0, test_per_sub=0, seed=seed, image_size=8)
        return [r.question for r in generate(spec)]
    rng = np.random.default_rng(seed)
    vocab_rng = np.random.default_rng(12345)  # one vocabulary for every seed
    syllables = ["ka", "lo", "mi", "ren", "sa", "tu", "vel", "dor", "pha", "qui", "zen", "bo"]
    vocab = ["".join(vocab_rng.choice(syllables, vocab_rng.integers(2, 5))) for _ in range(30_000)]
    weights = 1 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    cdf = np.cumsum(weights)
    out = []
    for _ in range(n):
        length = int(rng.integers(8, 31))
        picks = np.minimum(np.searchsorted(cdf, rng.random(length)), len(vocab) - 1)
        function = rng.random(length) < 0.35
        fw = rng.integers(len(FUNCTION_WORDS), size=length)
        words = [
            FUNCTION_WORDS[f] if is_f else vocab[p] for p, is_f, f in zip(picks, function, fw, strict=True)
        ]
        out.append(" ".join(words).capitalize() + "?")
    return out


def eval_sets(n: int, seed: int, kind: str) -> list[EvalSet]:
    sets = [
        load_eval_set("advbench", EVALSETS / "advbench" / "harmful_behaviors.csv"),
        load_eval_set("figstep", EVALSETS / "figstep_safebench" / "safebench.csv"),
    ]
    have = sum(es.n_texts for es in sets)
    extra = questions(max(0, n - have), seed, kind)
    sets.append(
        EvalSet(
            "synthetic", "jsonl", Path("-"), [EvalItem(f"s{k}", "question", q) for k, q in enumerate(extra)]
        )
    )
    return sets


def bench_text(args, s: AuditSettings, kind: str) -> None:
    t0 = time.perf_counter()
    train = questions(args.train, args.seed, kind)
    sets = eval_sets(args.eval, args.seed + 1, kind)
    n_eval = sum(es.n_texts for es in sets)
    print(f"generated {len(train)} train and {n_eval} eval questions in {time.perf_counter() - t0:.1f} s")
    batches = [
        {
            "id": [f"train/{k:06d}" for k in range(lo, min(lo + BATCH, len(train)))],
            "split": ["train"] * len(train[lo : lo + BATCH]),
            "question": train[lo : lo + BATCH],
        }
        for lo in range(0, len(train), BATCH)
    ]
    s = AuditSettings(**{**s.to_dict(), "scopes": ("eval",)})
    # the compiled kernels load (or compile, on a machine's first run) at their first call: once
    # per process, reported apart
    t0 = time.perf_counter()
    warm, _ = build_index([], sets[:1], s)
    match_batch(fingerprint_batch({k: v[:8] for k, v in batches[0].items()}, s), warm)
    print(f"first call (loads the compiled kernels): {time.perf_counter() - t0:.2f} s")
    # wall and CPU time of this process: the machine may be shared, and the CPU time is what
    # one core spends whatever else runs
    t0, c0 = time.perf_counter(), time.process_time()
    fps = [fingerprint_batch(b, s) for b in batches]
    t1, c1 = time.perf_counter(), time.process_time()
    index, _ = build_index([], sets, s)
    t2, c2 = time.perf_counter(), time.process_time()
    # the match columns of every batch, as an engine gathers them (no dict per match)
    found: dict[str, list] = {c: [] for c in MATCH_COLUMNS}
    for fb in fps:
        for c, values in match_batch(fb, index).items():
            found[c] += values
    t3, c3 = time.perf_counter(), time.process_time()
    per_q = (t1 - t0 + t3 - t2) / len(train) * 1e6
    cpu_q = (c1 - c0 + c3 - c2) / len(train) * 1e6
    print(f"\nText ({kind} questions), one process: {len(train)} questions x {n_eval} eval texts")
    print(f"  normalise          {t1 - t0:7.2f} s")
    print(
        f"  index the eval side {t2 - t1:6.2f} s  "
        f"({index.stats()['index_bytes'] / n_eval:.0f} bytes per eval text)"
    )
    print(f"  match (exact+near) {t3 - t2:7.2f} s")
    print(
        f"  per question       {per_q:7.1f} us wall, {cpu_q:.1f} us CPU (aim < 20 us); "
        f"{len(found['method'])} matches "
        f"({found['method'].count('exact')} exact)"
    )

    all_pairs(args, s, train, sets, match_rows(found), per_q, cpu_q)


def all_pairs(args, s: AuditSettings, train: list[str], sets: list[EvalSet], found: list[dict],
              per_q: float, cpu_q: float) -> None:  # fmt: skip
    """The all-pairs baseline on a slice (same rule, same normalisation), and the pairs it
    accepts that the index missed."""
    k = min(args.baseline, len(train))
    ref = [(es.name, it) for es in sets for it in es.items if it.text and not it.is_answer]
    ref_norm = [normalize_text(it.text) for _, it in ref]
    rule = NearRule.from_settings(s)
    t0, c0 = time.perf_counter(), time.process_time()
    brute = set()
    for i, q in enumerate(train[:k]):
        nq = normalize_text(q)
        for j, nr in enumerate(ref_norm):
            if nq == nr:
                brute.add((i, j))
                continue
            # the bag-of-words bound first: most pairs stop there
            if rule.judge(score_pair(nq, nr, align=False)) and rule.judge(score_pair(nq, nr)):
                brute.add((i, j))
    dt = time.perf_counter() - t0
    per_q_brute = dt / k * 1e6
    cpu_brute = (time.process_time() - c0) / k * 1e6
    print(
        f"  all-pairs baseline on {k} questions: {dt:.1f} s, {per_q_brute:,.0f} us per question"
        f" -> {per_q_brute * len(train) / 3600e6:.2f} h for {len(train)} (x{per_q_brute / per_q:,.0f}; "
        f"CPU {cpu_brute:,.0f} us, x{cpu_brute / cpu_q:,.0f})"
    )
    key = {(es, it.id, it.field): j for j, (es, it) in enumerate(ref)}
    ours = {
        (int(m["source_id"].split("/")[1]), key[(m["eval_set"], m["eval_id"], m["eval_field"])])
        for m in found
        if int(m["source_id"].split("/")[1]) < k
    }
    # a row with more than max_matches true matches in one set reports only the best ones
    per_row: dict[int, int] = {}
    for i, _ in brute:
        per_row[i] = per_row.get(i, 0) + 1
    missed = {(i, j) for i, j in brute - ours if per_row[i] <= s.max_matches}
    print(
        f"  on the slice: baseline {len(brute)} pairs, index {len(ours)}; missed by the index "
        f"in rows under the per-row cap of {s.max_matches}: {len(missed)}"
    )


def image_breakdown(pool: list[bytes]) -> None:
    """Where an image's time goes, each stage timed alone over the same images: the full decode
    (Pillow's, and ``audit.jpeg``'s that the default tiers use for colour JPEGs) and the
    pixel-exact key that the default tiers need (now: xxh3 over the pixel words; before: blake2b
    over a ``tobytes`` copy), the grey thumbnail of the perceptual hashes, and
    what the perceptual hashes alone would cost from a JPEG decoded at 1/8 scale (``draft``)."""
    import hashlib
    import io

    from PIL import Image

    from spa_vl.audit import image as image_mod
    from spa_vl.audit.jpeg import decode_rgbx, jpeg_size

    def decode(data: bytes) -> Image.Image:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im

    def jpeg_decode(data: bytes) -> None:
        size = jpeg_size(data)
        if size is None or decode_rgbx(data, size) is None:
            decode(data)  # what hash_image then does: Pillow

    def blake2b_key(data: bytes) -> None:
        im = decode(data)
        hashlib.blake2b(im.tobytes(), digest_size=8)

    def xxh3_key(data: bytes) -> None:
        image_mod.pixel_key(decode(data))

    def thumbnail(data: bytes) -> None:
        image_mod._perceptual(decode(data).convert("L"))

    def draft_perceptual(data: bytes) -> None:
        im = Image.open(io.BytesIO(data))
        im.draft("L", (2 * 32, 2 * 32))  # the decoder's 1/2-1/8 scale, at least 64 px
        im.load()
        image_mod._bits(*image_mod._perceptual(im.convert("L")))

    def encoded_key(data: bytes) -> None:
        hashlib.blake2b(data, digest_size=8)

    stages = {
        "full decode (Pillow)": decode,
        "full decode (colour JPEGs to RGBX words: audit.jpeg)": jpeg_decode,
        "full decode + exact key, before (blake2b of tobytes)": blake2b_key,
        "full decode + exact key (xxh3 of the pixels)": xxh3_key,
        "full decode + grey 32x32 thumbnail + DCT": thumbnail,
        "default image tiers (hash_image)": image_mod.hash_image,
        "1/8-scale decode (draft) + pHash + dHash": draft_perceptual,
        "blake2b of the encoded bytes": encoded_key,
    }
    print(f"  where the time goes ({len(pool)} images, each stage alone, CPU time):")
    for name, fn in stages.items():
        fn(pool[0])
        t0 = time.process_time()
        for data in pool:
            fn(data)
        per = (time.process_time() - t0) / len(pool)
        print(f"    {name:<54} {per * 1e6:7.0f} us  = {1 / per:7,.0f} images/s")


def bench_images(args, s: AuditSettings) -> None:
    t0 = time.perf_counter()
    spec = SampleSpec(
        train=args.pool,
        validation_per_sub=0,
        test_per_sub=0,
        seed=args.seed,
        image_size=args.image_size,
        image_format="jpeg",
    )
    pool = [r.image for r in generate(spec)]
    print(
        f"\ngenerated a pool of {len(pool)} JPEG images ({args.image_size} px, "
        f"{np.mean([len(b) for b in pool]) / 1024:.0f} KiB mean) in {time.perf_counter() - t0:.1f} s"
    )
    # the compiled grey pass loads (or compiles) at the first call: once per process, apart
    t0 = time.perf_counter()
    hash_image(pool[0])
    print(f"first call (loads the compiled kernel): {time.perf_counter() - t0:.2f} s")
    t0, c0 = time.perf_counter(), time.process_time()
    hashes = [hash_image(pool[k % len(pool)]) for k in range(args.images)]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"Images, one process: hashed {args.images} in {dt:.1f} s = "
        f"{args.images / dt:,.0f} images/s wall, {args.images / cpu:,.0f} per CPU second (aim >= 1,500)"
    )
    image_breakdown(pool[: min(len(pool), 2000)])
    t0 = time.perf_counter()
    ref = [hash_image(pool[(k * 7) % len(pool)], variants=True) for k in range(args.eval_images)]
    dt_ref = time.perf_counter() - t0
    index = ImageIndex.build(np.arange(len(ref)), ref)
    exact = np.array([h.exact for h in hashes], np.uint64)
    ph = np.array([h.phash for h in hashes], np.uint64)
    dh = np.array([h.dhash for h in hashes], np.uint64)
    t0 = time.perf_counter()
    rows, *_ = index.search(
        exact, ph, dh, s.phash_threshold, s.dhash_threshold, s.image_rule, s.image_variants()
    )
    dt = time.perf_counter() - t0
    print(f"  reference side: {len(ref)} images with variants hashed in {dt_ref:.1f} s")
    print(
        f"  search {len(hashes)} x {len(ref)} ({'+'.join(s.image_variants())}): {dt:.1f} s "
        f"= {dt / len(hashes) * 1e6:.0f} us per image, {len(rows)} pairs"
    )
    k = min(200, len(hashes))
    t0 = time.perf_counter()
    n = 0
    for h in hashes[:k]:
        for r in ref:
            if h.exact == r.exact or (
                bin(h.phash ^ r.phash).count("1") <= s.phash_threshold
                and bin(h.dhash ^ r.dhash).count("1") <= s.dhash_threshold
            ):
                n += 1
    dt_b = (time.perf_counter() - t0) / k
    print(
        f"  Python double-loop baseline (original view only): {dt_b * 1e6:,.0f} us per image "
        f"-> {dt_b * len(hashes):.0f} s for {len(hashes)} (x{dt_b / (dt / len(hashes)):.0f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=100_000)
    parser.add_argument("--eval", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=300, help="questions in the all-pairs slice")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--eval-images", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=2_000, help="distinct images, hashed in turn")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--text-kinds", default="diverse,sample", help="question generators to run")
    parser.add_argument("--no-images", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average {os.getloadavg()[0]:.1f}"
    )
    s = AuditSettings()
    if not args.no_text:
        for kind in args.text_kinds.split(","):
            bench_text(args, s, kind)
    if not args.no_images:
        bench_images(args, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
