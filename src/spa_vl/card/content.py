"""Everything the card says, gathered from the release folder into plain data.

``card_metadata`` gives the YAML front matter and ``card_context`` the values the body
template reads. Both depend only on the folder's files (parquet, MANIFEST.json, CHANGELOG.md,
an optional ``audit/report.json``), so rendering twice gives the same bytes and the offline
check can render again and compare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from spa_vl.about import CITATION, DESCRIPTION, HOMEPAGE, base_metadata
from spa_vl.card import published
from spa_vl.card.stats import ReleaseStats, size_category
from spa_vl.features import spa_vl_features
from spa_vl.names import LEVELS, SPLITS
from spa_vl.release import layout
from spa_vl.release.metadata import configs_yaml, dataset_info_yaml
from spa_vl.taxonomy import CONFIGS, load_taxonomy

DEFAULT_REPO_ID = "ORG/NAME"
AUDIT_REPORT = "audit/report.json"
IMAGES = layout.CARD_IMAGES
# The card's own settings, kept in a hidden comment of the body so that re-rendering (and the
# check, which renders again) keeps them: `<!-- spa-vl card: repo_id=ORG/NAME[ gated=MODE] -->`.
_MARKER = re.compile(r"<!-- spa-vl card: repo_id=(?P<repo>\S+?)(?: gated=(?P<gated>\S+))? -->")
# How the Hub gates a repository (huggingface_hub `update_repo_settings(gated=...)`): "auto"
# grants each request once the form is filled in, "manual" lets the maintainers review it.
GATED_MODES = ("auto", "manual")

GATED_HEADING = "Acknowledge the harmful-content notice to access SPA-VL"
GATED_BUTTON = "Acknowledge and request access"


def gating_metadata() -> dict:
    """The Hub's access-request fields, with a harmful-content notice."""
    domains = ", ".join(load_taxonomy().display("domain", d).lower() for d in load_taxonomy().names("domain"))
    return {
        "extra_gated_heading": GATED_HEADING,
        "extra_gated_prompt": (
            "SPA-VL contains questions and images about harmful topics "
            f"({domains}) and rejected responses that may comply with the harmful requests. "
            "It is published for research on the safety "
            "alignment of vision-language models. By requesting access you agree to use it "
            "for that research only, not to train or deploy systems meant to produce harmful "
            "content, and to credit the authors as the CC BY 4.0 licence requires."
        ),
        "extra_gated_fields": {
            "Affiliation": "text",
            "I will use SPA-VL for research on AI safety only": "checkbox",
            "I understand that SPA-VL contains offensive and harmful content": "checkbox",
        },
        "extra_gated_button_content": GATED_BUTTON,
    }


@dataclass(frozen=True)
class CardSettings:
    """What a rendering of the card was told: the repository it describes and whether that
    repository is gated (``None``: anyone can download it)."""

    repo_id: str
    gated: str | None = None

    def marker(self) -> str:
        gated = f" gated={self.gated}" if self.gated else ""
        return f"<!-- spa-vl card: repo_id={self.repo_id}{gated} -->"


def card_settings(folder: str | Path) -> CardSettings | None:
    """The settings of the card in ``folder`` (None when README.md was not rendered by
    ``spa-vl card``: no marker)."""
    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return None
    m = _MARKER.search(readme.read_text(encoding="utf-8"))
    return CardSettings(m["repo"], m["gated"]) if m else None


_KEEP = "keep"
_ACCESS: ContextVar[str | None] = ContextVar("spa_vl_card_access", default=_KEEP)


@contextmanager
def card_access(gated: str | None) -> Iterator[None]:
    """Render the cards of this block for a repository gated with ``gated`` ("auto",
    "manual") or not gated (``None``), instead of keeping the folder's current choice
    (``spa-vl card --gated``)."""
    if gated is not None and gated not in GATED_MODES:
        raise ValueError(f"gated must be one of {GATED_MODES} or None, not {gated!r}")
    token = _ACCESS.set(gated)
    try:
        yield
    finally:
        _ACCESS.reset(token)


def card_gating(folder: str | Path) -> str | None:
    """The access mode the card being rendered states: the one of ``card_access`` when set,
    else the previous rendering's; a new card says the repository is not gated, because
    only ``spa-vl release --gated`` gates it."""
    chosen = _ACCESS.get()
    if chosen != _KEEP:
        return chosen
    settings = card_settings(folder)
    return settings.gated if settings and settings.gated in GATED_MODES else None


def card_metadata(folder: str | Path, stats: ReleaseStats) -> dict:
    """The card's YAML front matter, computed from the release folder. The Hub's access form
    (``extra_gated_*``) is declared only when the card says the repository is gated: the Hub
    shows it on gated repositories alone, so on others it would claim a gate that is not
    there."""
    meta = base_metadata()
    meta["size_categories"] = [size_category(stats.total("default"))]
    if card_gating(folder):
        meta.update(gating_metadata())
    meta["citation"] = CITATION
    meta["configs"] = configs_yaml(stats)
    # The build hands over the Arrow sizes it counted; re-rendering a folder takes them from
    # the card it had (where the row counts still match), so no image is read again.
    nbytes = None if stats.arrow_bytes is not None else _arrow_bytes(folder, stats)
    meta["dataset_info"] = dataset_info_yaml(stats, nbytes, folder)
    return meta


def _arrow_bytes(folder: str | Path, stats: ReleaseStats) -> dict[tuple[str, str], int]:
    """num_bytes per (config, split) as the build recorded them, where the row count still
    matches, so re-rendering the card does not read every image again."""
    from spa_vl.release.metadata import read_front_matter

    try:
        meta, _ = read_front_matter(Path(folder) / "README.md")
        return {
            (info["config_name"], s["name"]): int(s["num_bytes"])
            for info in meta.get("dataset_info") or []
            for s in info.get("splits") or []
            if stats.rows.get(info["config_name"], {}).get(s["name"]) == s.get("num_examples")
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def existing_repo_id(folder: str | Path) -> str | None:
    """The repo id a previous rendering used (kept in a hidden comment of the body)."""
    settings = card_settings(folder)
    return settings.repo_id if settings else None


def card_context(folder: str | Path, stats: ReleaseStats, repo_id: str = DEFAULT_REPO_ID) -> dict:
    """The values the body template renders; every number in it comes from the folder."""
    folder = Path(folder)
    tax = load_taxonomy()
    manifest = _manifest(folder)
    counts = manifest.get("counts") or {}
    gated = card_gating(folder)
    return {
        "repo_id": repo_id,
        "gated": gated,
        "marker": CardSettings(repo_id, gated).marker(),
        "tags": list(base_metadata().get("tags") or []),
        "version": manifest.get("version", "?"),
        "package_version": manifest.get("package_version", "?"),
        "source": manifest.get("source") or {},
        "synthetic": stats.synthetic,
        "description": DESCRIPTION,
        "homepage": HOMEPAGE,
        "citation": CITATION,
        "published": published,
        "splits": list(SPLITS),
        "configs": _configs(stats),
        "example_config": _example_config(stats),
        "rows": stats.rows,
        "total": stats.total("default"),
        "eval_sets": dict(stats.eval_sets),
        "unlabeled": {s: stats.unlabeled(s) for s in SPLITS},
        "labelled": {s: stats.rows["default"][s] - stats.unlabeled(s) for s in SPLITS},
        "domain_rows": _domain_rows(stats),
        "taxonomy_rows": _taxonomy_rows(stats),
        "sizes": {level: len(tax.names(level)) for level in LEVELS},
        "schema": _schema_rows(),
        "build": _build_counts(counts),
        "changelog": _changelog(folder),
        "audit": _audit(folder),
        "images": IMAGES,
        "unlabeled_folder": layout.UNLABELED,
        "taxonomy_notes": _taxonomy_notes(),
    }


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "MANIFEST.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _example_config(stats: ReleaseStats) -> str:
    """The config the loading examples use: ``malicious_use`` when it has rows."""
    present = [c for c in CONFIGS if c != "default" and stats.total(c) > 0]
    preferred = load_taxonomy().config_of_domain("Malicious Use")
    return preferred if preferred in present else (present or ["default"])[0]


def _configs(stats: ReleaseStats) -> list[dict]:
    """The configs that have data files (the build writes none for an empty config)."""
    tax = load_taxonomy()
    out = []
    for config in CONFIGS:
        if not any(stats.files[config].values()):
            continue
        domain = tax.domain_of_config(config)
        out.append(
            {
                "name": config,
                "domain": domain,
                "display": tax.display("domain", domain) if domain else "all rows",
                "rows": stats.rows[config],
                "total": stats.total(config),
                "mib": stats.parquet_bytes[config] / 2**20,
                "shards": sum(len(v) for v in stats.files[config].values()),
                "includes": layout.config_file_glob(config),
            }
        )
    return out


def _domain_rows(stats: ReleaseStats) -> list[dict]:
    tax = load_taxonomy()
    rows = []
    for d in tax.names("domain"):
        rows.append(
            {
                "name": d,
                "display": tax.display("domain", d),
                "config": tax.config_of_domain(d),
                "categories": len(tax.children("domain", d)),
                "subcategories": sum(len(tax.children("category", c)) for c in tax.children("domain", d)),
                "counts": {s: stats.count("domain", s, d) for s in SPLITS},
            }
        )
    return rows


def _taxonomy_rows(stats: ReleaseStats) -> list[dict]:
    """One row per subcategory, the domain and category named on their first row only."""
    tax = load_taxonomy()
    rows = []
    for d in tax.names("domain"):
        for ci, c in enumerate(tax.children("domain", d)):
            for si, s in enumerate(tax.children("category", c)):
                rows.append(
                    {
                        "domain": d if ci == 0 and si == 0 else "",
                        "category": c if si == 0 else "",
                        "category_display": tax.display("category", c) if si == 0 else "",
                        "name": s,
                        "display": tax.display("subcategory", s),
                        "counts": {sp: stats.count("subcategory", sp, s) for sp in SPLITS},
                    }
                )
    return rows


def _taxonomy_notes() -> dict:
    """The notes of ``schema/taxonomy.json`` (category count, preserved typos)."""
    from spa_vl._resources import schema_path

    raw = json.loads(schema_path("taxonomy.json").read_text(encoding="utf-8"))
    return raw.get("notes") or {}


_SCHEMA_NOTES = {
    "id": "stable row id, e.g. `train/000123`, `harm/000001`",
    "image": "the image, bytes embedded in the parquet (`{bytes, path}`)",
    "image_name": "original relative path when known (train: `class1/class2/class3/<n>.jpg`)",
    "question": "the user's question about the image",
    "chosen": "the preferred (safer) response; null on test rows",
    "rejected": "the dispreferred response; null on test rows",
    "domain": "harm domain; -1 where unknown",
    "category": "harm category; -1 where unknown",
    "subcategory": "harm subcategory; -1 where unknown",
    "eval_set": "`harm` (HarmEval) or `help` (HelpEval) on test rows; -1 elsewhere",
}


def _schema_rows() -> list[dict]:
    rows = []
    for name, feature in spa_vl_features().items():
        kind = type(feature).__name__
        if kind == "ClassLabel":
            ftype = f"ClassLabel ({feature.num_classes} names)"
        elif kind == "Value":
            ftype = f"Value({feature.dtype})"
        else:
            ftype = f"{kind}()"
        rows.append({"name": name, "type": ftype, "notes": _SCHEMA_NOTES.get(name, "")})
    return rows


def _build_counts(counts: dict) -> dict:
    splits = counts.get("splits") or {}
    return {
        "read": counts.get("read"),
        "accepted": counts.get("accepted"),
        "quarantined": counts.get("quarantined"),
        "splits": [{"name": s, **splits[s]} for s in SPLITS if s in splits],
        "problems": sorted((counts.get("problems") or {}).items()),
    }


def _changelog(folder: Path) -> str:
    """CHANGELOG.md without its title, headings moved under the card's section."""
    path = folder / "CHANGELOG.md"
    if not path.is_file():
        return ""
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("##" + ln if ln.startswith("#") else ln for ln in lines).strip()


# The audit's scopes (schema/audit_report.schema.json) as the card names them: matches
# against external eval sets first, then those inside the dataset.
AUDIT_SCOPES = {
    "eval": "against the evaluation sets",
    "duplicate": "inside the dataset: duplicates within a split",
    "leak": "inside the dataset: leaks between train, validation and test",
}


def _audit(folder: Path) -> dict | None:
    """The audit report's summary: matches and matched rows per scope, so the card says how
    many are against eval sets and how many inside the dataset; a scope the audit did not
    run is said to be unchecked, never shown as zero."""
    path = folder / AUDIT_REPORT
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"{AUDIT_REPORT} cannot be read: {exc}"}
    summary = report.get("summary") or {}
    groups = summary.get("groups") or []
    eval_sets = [e.get("name") for e in report.get("eval_sets") or [] if e.get("name")]
    run = (summary.get("settings") or {}).get("scopes")
    matches = report.get("matches") or []
    total = summary.get("matches", len(matches))
    # Distinct rows per scope need the match list; a report that kept only the summary gives
    # them where one group covers the scope (else unknown, shown as "?").
    complete = len(matches) == total

    def rows(scopes: tuple[str, ...]) -> int | None:
        if complete:
            return len({(m.get("source_split"), m.get("source_id")) for m in matches
                        if m.get("scope") in scopes})  # fmt: skip
        found = [g for g in groups if g.get("scope") in scopes]
        return 0 if not found else found[0].get("source_rows") if len(found) == 1 else None

    def count(scopes: tuple[str, ...]) -> int:
        by_scope = summary.get("by_scope")
        if isinstance(by_scope, dict):
            return sum(int(by_scope.get(sc, 0)) for sc in scopes)
        return sum(int(g.get("matches", 0)) for g in groups if g.get("scope") in scopes)

    scopes = []
    for scope, label in AUDIT_SCOPES.items():
        checked = (run is None or scope in run) and (scope != "eval" or bool(eval_sets))
        scopes.append({"scope": scope, "label": label, "checked": checked,
                       "matches": count((scope,)), "rows": rows((scope,))})  # fmt: skip
    inside = ("duplicate", "leak")
    return {
        "path": AUDIT_REPORT,
        "rows": (report.get("source") or {}).get("rows"),
        "matches": total,
        "rows_matched": summary.get("source_rows_matched"),
        "eval_sets": eval_sets,
        "scopes": scopes,
        "eval": next(sc for sc in scopes if sc["scope"] == "eval"),
        "inside": {
            "checked": any(sc["checked"] for sc in scopes if sc["scope"] in inside),
            "matches": count(inside),
            "rows": rows(inside),
        },
        "groups": groups,
    }
