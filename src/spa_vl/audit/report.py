"""The audit report: JSON (validated against ``schema/audit_report.schema.json``) and markdown."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

from spa_vl.about import __version__
from spa_vl.audit.core import match_order, match_rows
from spa_vl.audit.engine import AuditRun
from spa_vl.audit.evalsets import EvalSet
from spa_vl.audit.settings import AuditSettings

REPORT_FORMAT = "spa-vl-audit-report"
REPORT_VERSION = 1


def build_report(run: AuditRun, settings: AuditSettings, source: dict, eval_sets: list[EvalSet]) -> dict:
    """Assemble the report dict (see the schema for every field)."""
    # one canonical order, whatever order an engine's batches came back in (Ray's are not
    # ordered): the same key ``frame.best`` sorts each batch by
    rows = sorted(match_rows(run.matches), key=match_order)
    groups: dict[tuple[str, str, str], dict] = {}
    for m in rows:
        g = groups.setdefault((m["scope"], m["eval_set"], m["method"]), {"n": 0, "src": set(), "ref": set()})
        g["n"] += 1
        g["src"].add((m["source_split"], m["source_id"]))
        g["ref"].add(m["eval_id"])
    detail = [
        {
            "scope": s,
            "eval_set": e,
            "method": m,
            "matches": g["n"],
            "source_rows": len(g["src"]),
            "eval_items": len(g["ref"]),
        }
        for (s, e, m), g in sorted(groups.items())
    ]
    summary = {
        "matches": len(rows),
        "source_rows_matched": len({(m["source_split"], m["source_id"]) for m in rows}),
        "by_scope": dict(sorted(Counter(m["scope"] for m in rows).items())),
        "by_eval_set": dict(sorted(Counter(m["eval_set"] for m in rows).items())),
        "by_method": dict(sorted(Counter(m["method"] for m in rows).items())),
        "by_field": dict(sorted(Counter(m["field"] for m in rows).items())),
        "groups": detail,
        "settings": settings.to_dict(),
        "index": _index_summary(run.index_stats),
        "seconds": run.seconds,
    }
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "package_version": __version__,
        "source": {
            **source,
            "rows": run.rows_audited,
            "images_hashed": run.images_hashed,
            **({"images_ocr": run.ocr} if run.ocr else {}),
        },
        "eval_sets": [
            {
                "name": es.name,
                "format": es.format,
                "path": str(es.path),
                "texts": es.n_texts,
                "answers": es.n_answers,
                "images": es.n_images,
                "missing_images": es.missing_images,
                "image_errors": run.eval_image_errors.get(es.name, 0),
            }
            for es in eval_sets
        ],
        "summary": summary,
        "matches": rows,
    }


def _index_summary(stats: dict) -> dict:
    """Index statistics plus the index's bytes per reference item (texts and images; in a
    reverse scan or with ``--scopes eval`` the reference side is the eval items alone)."""
    items = stats.get("reference_texts", 0) + stats.get("reference_images", 0)
    eval_items = sum(v["texts"] + v["images"] for v in stats.get("eval_items", {}).values())
    out = dict(stats)
    out["index_bytes_per_reference_item"] = round(stats["index_bytes"] / items, 1) if items else 0.0
    out["eval_items_total"] = eval_items
    return out


@cache
def report_schema() -> dict:
    from spa_vl._resources import schema_path

    return json.loads(schema_path("audit_report.schema.json").read_text(encoding="utf-8"))


def validate_report(report: dict) -> list[str]:
    """Schema errors of a report, each with its JSON path; empty when valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(report_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.path)))
    ]


def write_json(report: dict, path: str | Path) -> None:
    """Write the report atomically: an interrupted write leaves an earlier report whole."""
    from spa_vl.outputs import write_text_atomic

    write_text_atomic(path, json.dumps(report, ensure_ascii=False, indent=1) + "\n")


def _cell(text: object, width: int = 90) -> str:
    s = "" if text is None else " ".join(str(text).split())
    s = s if len(s) <= width else s[: width - 1] + "…"
    return s.replace("|", "\\|")


def _source_cell(m: dict) -> str:
    """The source text; for an OCR match, what the image reads."""
    if m.get("ocr_text") is not None:
        return "image reads: " + _cell(m["ocr_text"], 76)
    return _cell(m["source_text"])


def summary_text(report: dict) -> str:
    """A few lines for the terminal."""
    s = report["summary"]
    lines = [
        f"audited {report['source']['rows']} rows of {report['source']['path']}: "
        f"{s['matches']} matches on {s['source_rows_matched']} rows"
    ]
    for g in s["groups"]:
        lines.append(
            f"  {g['scope']:<9} {g['eval_set']:<16} {g['method']:<12} {g['matches']:>6} matches, "
            f"{g['source_rows']} rows, {g['eval_items']} items"
        )
    o = report["source"].get("images_ocr")
    if o:
        lines.append(
            f"  OCR: {o.get('read', 0)} images read ({o.get('with_text', 0)} with text), "
            f"{o.get('gated', 0)} skipped by the text gate, {o.get('cached', 0)} from the cache"
        )
    return "\n".join(lines)


def to_markdown(report: dict, examples: int = 5) -> str:
    """A readable summary with a few examples per scope and reference set."""
    s = report["summary"]
    src = report["source"]
    out = [
        "# Contamination audit",
        "",
        f"Source `{src['path']}` ({src.get('format', '?')}), {src['rows']} rows; "
        f"{s['matches']} matches on {s['source_rows_matched']} rows.",
        "",
        "## Eval sets",
        "",
        "| name | format | texts | images | missing images |",
        "|---|---|---:|---:|---:|",
    ]
    out += [
        f"| {e['name']} | {e['format']} | {e['texts']} | {e['images']} | {e['missing_images']} |"
        for e in report["eval_sets"]
    ] or ["| (none) | | | | |"]
    out += ["", "## Matches", "", "| scope | reference | method | matches | source rows | items |"]
    out += ["|---|---|---|---:|---:|---:|"]
    out += [
        f"| {g['scope']} | {g['eval_set']} | {g['method']} | {g['matches']} | "
        f"{g['source_rows']} | {g['eval_items']} |"
        for g in s["groups"]
    ] or ["| (none) | | | | | |"]
    # one heading per (scope, reference set), its examples under it: the report's rows are in
    # match order, which interleaves the sets, so they are grouped first
    by_key: dict[tuple[str, str], list[dict]] = {}
    for m in report["matches"]:
        kept = by_key.setdefault((m["scope"], m["eval_set"]), [])
        if len(kept) < examples:
            kept.append(m)
    shown: list[str] = []
    for (scope, eval_set), kept in sorted(by_key.items()):
        shown += ["", f"### {scope}: {eval_set}", ""]
        shown += ["| source | field | reference | method | score | source text | reference text |"]
        shown += ["|---|---|---|---|---:|---|---|"]
        shown += [
            f"| {m['source_id']} | {m['field']} | {m['eval_id']} ({m['eval_field']}) | "
            f"{m['method']} | {m['score']:.2f} | {_source_cell(m)} | "
            f"{_cell(m['eval_text'])} |"
            for m in kept
        ]
    if shown:
        out += ["", "## Examples", *shown]
    settings = ", ".join(f"{k}={v}" for k, v in s["settings"].items())
    out += ["", "## Settings", "", settings, ""]
    return "\n".join(out)
