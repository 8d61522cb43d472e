"""``spa-vl sample OUT``: write the synthetic mini SPA-VL (aside, then swapped in whole)."""

from __future__ import annotations

import argparse

from spa_vl.sample import DEFAULT_TRAIN, LAYOUTS, TEXTURES, SampleSpec, write_sample


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output folder: new, empty, or an earlier sample (replaced whole)")
    p.add_argument("--layout", choices=LAYOUTS, default="hub", help="raw layout to write (default: hub)")
    p.add_argument("--train", type=int, default=DEFAULT_TRAIN, help=f"train rows (default {DEFAULT_TRAIN})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="long side of every image")
    p.add_argument("--image-format", choices=("mixed", "jpeg", "png"), default="mixed")
    p.add_argument(
        "--texture",
        choices=TEXTURES,
        default="gradient",
        help="gradient: small smooth images (default); photo: incompressible photo-like JPEGs, "
        "about 38 KB per row like the real train split (size them with --image-size)",
    )
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from spa_vl.cli import UsageError

    if args.train < 0 or (args.image_size is not None and args.image_size < 8):
        raise UsageError("--train must be >= 0 and --image-size >= 8")
    spec = SampleSpec(
        train=args.train,
        seed=args.seed,
        image_size=args.image_size,
        image_format=args.image_format,
        texture=args.texture,
    )
    from spa_vl.release.staging import terminate_as_interrupt

    with terminate_as_interrupt():
        out = write_sample(args.out, args.layout, spec)
    if not args.quiet:
        print(f"wrote the synthetic SPA-VL sample ({args.layout} layout, {args.train:,} train rows) to {out}")
    return 0
