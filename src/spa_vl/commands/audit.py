"""``spa-vl audit``: duplicates inside splits, leaks across splits, matches against eval sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spa_vl.cli import EXIT_DATA, EXIT_OK, UsageError
from spa_vl.commands.settings_args import add_settings_arguments, settings_from_args

if TYPE_CHECKING:
    from spa_vl.audit.settings import AuditSettings

ENGINES = ("local", "ray")  # "ray" needs the distributed extra (ray[data])
# cached kernels load in well under this many seconds; past it, they are being compiled
COMPILE_NOTICE_AFTER = 3.0
# AuditSettings fields shown under "what is audited", in this order; the others are thresholds
AUDITED = ("images", "answers", "scopes", "near", "flips", "crops")
# fields with a hand-written option (--ocr: on by default for some audits only) or none
# (ocr_cache: beside --out)
HAND_WRITTEN = ("ocr", "ocr_cache")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options: inputs and outputs by hand, the settings' from ``AuditSettings``'s fields."""
    from spa_vl.audit.settings import AuditSettings

    parser.add_argument(
        "src",
        metavar="SRC",
        help="a release folder or any raw source; with --against, a corpus of parquet shards "
        "(a folder, a glob or hf://datasets/...)",
    )
    parser.add_argument("--format", default="auto", help="source format (auto, hub, rlhf-json, jsonl)")
    _eval_options(parser)
    parser.add_argument(
        "--engine", choices=ENGINES, default="local", help="local (default) or ray (the distributed extra)"
    )
    parser.add_argument("--workers", type=int, default=1, help="local engine: processes (%(default)s)")
    parser.add_argument(
        "--ray-address",
        help="join this Ray cluster (e.g. auto, ray://head:10001); without it Ray starts locally",
    )
    parser.add_argument("--num-cpus", type=int, help="CPUs of a Ray started locally (default: all)")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per batch (%(default)s)")
    parser.add_argument("--out", required=True, help="the JSON report")
    parser.add_argument("--markdown", help="also write a markdown summary here")
    parser.add_argument(
        "--fail-on",
        type=int,
        metavar="N",
        help="exit 1 when more than N source rows match (summary.source_rows_matched; any scope): "
        "for CI, --fail-on 0 fails on any match",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    audited = parser.add_argument_group("what is audited")
    add_settings_arguments(audited, AuditSettings, names=AUDITED)
    audited.add_argument(
        "--ocr",
        action=argparse.BooleanOptionalAction,
        default=None,  # None: decided by _ocr_wanted
        help="read text in images (OCR) and match it against eval texts and eval images' text; "
        "default: on with --images and --eval when the ocr extra is installed; recognised texts "
        "are cached in .cache/ocr.jsonl beside the report",
    )
    _scan_options(parser)
    thresholds = parser.add_argument_group("thresholds (defaults tuned by bench/audit_accuracy.py)")
    add_settings_arguments(thresholds, AuditSettings, skip=AUDITED + HAND_WRITTEN)


def _eval_options(parser: argparse.ArgumentParser) -> None:
    """The eval sets to audit against."""
    parser.add_argument(
        "--eval",
        dest="evals",
        action="append",
        default=[],
        metavar="NAME=PATH[:FORMAT]",
        help="an eval set to audit against (repeatable); formats: advbench, figstep, "
        "mm-safetybench, vlguard, siuo, vlsbench, jailbreakv, spa-vl, csv, json, jsonl",
    )
    parser.add_argument(
        "--text-field",
        action="append",
        default=[],
        help="text field(s) of csv/json/jsonl eval sets (repeatable)",
    )
    parser.add_argument("--image-field", help="image path field of csv/json/jsonl eval sets")
    parser.add_argument("--id-field", help="id field of csv/json/jsonl eval sets")
    parser.add_argument(
        "--eval-image-root",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="folder an eval set's image paths are relative to",
    )


def _scan_options(parser: argparse.ArgumentParser) -> None:
    """``--against``: the reverse scan of a corpus."""
    rev = parser.add_argument_group("reverse scan: look for eval items inside a large corpus")
    rev.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="spa_vl=PATH | NAME=PATH[:FORMAT]",
        help="scan SRC (parquet shards) for these eval items (repeatable); spa_vl=PATH takes the "
        "test and validation splits of a release or Hub-layout folder",
    )
    rev.add_argument("--text-column", default="text", help="corpus text column (%(default)s)")
    rev.add_argument("--image-column", help="corpus image column (bytes or {bytes, path})")
    rev.add_argument("--id-column", help="corpus id column (default: <shard>:<row>)")
    rev.add_argument("--work-dir", help="per-shard results, for resuming (default: <out>.parts)")


def _warm_up(quiet: bool) -> None:
    from spa_vl.audit.text import warm_up

    def say() -> None:  # said during the wait, not after it
        print(
            "compiling the near-duplicate kernels (the first audit on this machine, ~30 s; "
            "cached for the next ones)...",
            file=sys.stderr,
            flush=True,
        )

    seconds = warm_up(None if quiet else say, after=COMPILE_NOTICE_AFTER)
    if seconds > COMPILE_NOTICE_AFTER and not quiet:
        print(f"compiled the near-duplicate kernels in {seconds:.0f} s", file=sys.stderr)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse unusable output paths before any long work: a folder, an input (or a file inside
    an input folder), an unwritable place, or --out and --markdown naming one file."""
    from spa_vl.audit.evalsets import EvalSetError, parse_eval_spec
    from spa_vl.outputs import check_output_dir, check_output_file
    from spa_vl.release.layout import DATA, is_release

    src = Path(args.src)
    # a release is read from data/ alone, so <release>/audit/report.json (where `spa-vl card`
    # looks for it) is allowed; any other source is an input as a whole
    inputs: list[str | Path] = [src / DATA if is_release(src) else src]
    if any(c in args.src for c in "*?[") or args.src.startswith("hf://"):
        inputs = []  # a glob or a Hub path: no local folder to protect
    for spec in [*args.evals, *args.against]:
        name, sep, rest = spec.partition("=")
        if spec in ("spa_vl", "spa-vl") or spec.startswith(("spa_vl:", "spa-vl:")):
            continue  # --against spa_vl without a path: load_against says what it needs
        if name in ("spa_vl", "spa-vl") and sep:  # spa_vl=RELEASE[:CONFIG]
            inputs.append(rest if Path(rest).exists() else rest.rpartition(":")[0] or rest)
            continue
        try:
            inputs.append(parse_eval_spec(spec)[1])
        except EvalSetError as exc:
            raise UsageError(str(exc)) from None
    out = check_output_file(args.out, option="--out", inputs=inputs)
    if args.markdown:
        md = check_output_file(args.markdown, option="--markdown", inputs=inputs)
        if md == out:
            raise UsageError(f"--markdown {args.markdown}: is the --out file too; give another name")
    if args.against:
        work = Path(args.work_dir) if args.work_dir else out.with_name(out.name + ".parts")
        check_output_dir(
            work,
            option="--work-dir",
            inputs=[*inputs, out],
            accept=lambda d: all(p.suffix in (".json", ".tmp") and p.is_file() for p in d.iterdir()),
            what="folder of scan parts (<key>.json)",
        )


def audit_settings(args: argparse.Namespace, **override: object) -> AuditSettings:
    """``AuditSettings`` from the options (``override`` wins); a refused value is a UsageError."""
    from spa_vl.audit.settings import AuditSettings

    values: dict[str, object] = {"ocr": False}
    if _ocr_wanted(args):
        # in .cache/: a release's verify and Hub push skip it, so a report kept in
        # <release>/audit/ does not put an unlisted file into the release
        values.update(ocr=True, ocr_cache=str(Path(args.out).parent / ".cache" / "ocr.jsonl"))
    return settings_from_args(AuditSettings, args, **{**values, **override})


def _ocr_wanted(args: argparse.Namespace) -> bool:
    """``--ocr`` / ``--no-ocr``; by default on for an image audit against eval sets (the gate
    keeps photos cheap), off for a corpus scan, and off with a note without the ocr extra."""
    from spa_vl.audit.ocr import MISSING_OCR, ocr_available

    choice = getattr(args, "ocr", None)
    if choice is True and not ocr_available():
        raise UsageError(MISSING_OCR)
    if choice is not None:
        return choice
    default = bool(args.images and args.evals and not args.against)
    if default and not args.quiet:  # on by default: say so, and how to skip it (it costs time)
        note = ("reading the text in images too (the OCR tier; --no-ocr skips it)" if ocr_available()
                else "OCR tier off (pip install 'spa-vl[ocr]' to read text in images)")  # fmt: skip
        print(f"spa-vl audit: {note}", file=sys.stderr)
    return default and ocr_available()


def _run_scan(args: argparse.Namespace) -> int:
    from spa_vl.audit.executor import Engine, RayMissingError
    from spa_vl.audit.scan import ScanError, load_against, run_scan

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.evals:
        raise UsageError("--eval audits SRC itself; --against scans a corpus: use one of them")
    # a corpus is scanned for eval items only: duplicates inside a corpus are not this tool's job
    settings = audit_settings(args, scopes=("eval",), answers=False)
    try:
        eval_sets = [load_against(spec, args, settings.images) for spec in args.against]
        report = run_scan(
            args.src,
            eval_sets,
            settings,
            out=Path(args.out),
            work_dir=Path(args.work_dir) if args.work_dir else None,
            text_column=args.text_column,
            image_column=args.image_column,
            id_column=args.id_column,
            engine=Engine(args.engine, args.workers, args.ray_address, args.num_cpus),
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except (ScanError, RayMissingError) as exc:
        raise UsageError(str(exc)) from None
    return _finish(report, args)


def _finish(report: dict, args: argparse.Namespace) -> int:
    from spa_vl.audit.report import summary_text, to_markdown, validate_report, write_json

    errors = validate_report(report)
    if errors:  # a bug in this package, not in the data: say so loudly
        raise RuntimeError("the audit report does not match its schema:\n" + "\n".join(errors[:10]))
    from spa_vl.outputs import write_text_atomic

    for path in filter(None, (args.out, args.markdown)):  # checked up front; e.g. <release>/audit/
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(report, args.out)
    if args.markdown:
        write_text_atomic(args.markdown, to_markdown(report))
    if not args.quiet:
        print(summary_text(report), file=sys.stderr)
    # rows, not matches: one row can match several items and sets (up to --max-matches each),
    # so a budget of rows does not move when an eval set is added
    rows = report["summary"]["source_rows_matched"]
    if args.fail_on is not None and rows > args.fail_on:
        if not args.quiet:
            print(
                f"spa-vl audit: {rows} rows matched ({report['summary']['matches']} matches) "
                f"> --fail-on {args.fail_on}",
                file=sys.stderr,
            )
        return EXIT_DATA
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    _check_outputs(args)
    if args.near:
        _warm_up(args.quiet)
    if args.against:
        return _run_scan(args)
    from spa_vl.audit.engine import run_local
    from spa_vl.audit.evalsets import EvalSetError, load_eval_spec
    from spa_vl.audit.inputs import SourceBatches
    from spa_vl.audit.report import build_report
    from spa_vl.problems import SourceError

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    settings = audit_settings(args)
    bad = [r for r in args.eval_image_root if "=" not in r or not r.split("=", 1)[1]]
    if bad:
        raise UsageError(f"--eval-image-root {bad[0]!r}: expected NAME=DIR")
    roots = dict(r.split("=", 1) for r in args.eval_image_root)
    try:
        eval_sets = [
            load_eval_spec(spec, text_fields=args.text_field, image_field=args.image_field,
                           id_field=args.id_field, image_roots=roots,
                           load_images=args.images or settings.ocr)
            for spec in args.evals
        ]  # fmt: skip
    except EvalSetError as exc:
        raise UsageError(str(exc)) from None
    names = [es.name for es in eval_sets]
    if len(set(names)) != len(names):
        raise UsageError(f"eval-set names must differ: {', '.join(names)}")
    unknown = sorted(set(roots) - set(names))
    if unknown:  # a typo would otherwise leave that set's images silently unfound
        raise UsageError(
            f"--eval-image-root {unknown[0]}=...: no eval set of that name (eval sets: {', '.join(names)})"
        )
    source = SourceBatches(Path(args.src), args.format, args.batch_size, args.images or settings.ocr)
    try:
        described = source.describe()
        if args.engine == "ray":
            from spa_vl.audit.ray_engine import run_ray

            run_ = run_ray(source, eval_sets, settings, args.ray_address, args.num_cpus, not args.quiet)
        else:
            run_ = run_local(source, eval_sets, settings, not args.quiet, args.workers)
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        from spa_vl.audit.executor import RayMissingError

        if isinstance(exc, RayMissingError):
            raise UsageError(str(exc)) from None
        raise
    described.update(
        rows_per_split=source.per_split,
        rows_unreadable=source.rows_unreadable,
        image_errors=source.image_errors,
    )
    report = build_report(run_, settings, described, eval_sets)
    return _finish(report, args)
