"""Render a release's card: README.md (YAML + body), the plots and croissant.json.

Everything is computed from the release: during a build from the figures the writer gathered as
the rows passed (``ReleaseStats``, handed over, so the folder's data is not read again), else
from the folder's files. The template lives in the top-level ``dataset_card/`` folder (shipped
in the wheel as ``spa_vl._resources.dataset_card``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2
import yaml

from spa_vl._resources import resource_dir
from spa_vl.card.content import (
    AUDIT_REPORT,
    DEFAULT_REPO_ID,
    card_context,
    card_metadata,
    existing_repo_id,
)
from spa_vl.card.croissant import CROISSANT_NAME, write_croissant
from spa_vl.card.stats import ReleaseStats, read_stats
from spa_vl.release.manifest import refresh_manifest

TEMPLATE = "README.md.j2"


class _CardDumper(yaml.SafeDumper):
    """Multi-line strings (the BibTeX citation) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CardDumper.add_representer(str, _str)


def write_card(readme: Path, meta: dict, body: str) -> None:
    """README.md: the YAML front matter between ``---`` lines, then the body."""
    front = yaml.dump(meta, Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=100)
    readme.write_text(f"---\n{front}---\n{body}", encoding="utf-8")


def _number(value: object) -> str:
    """Thousands separators for ints; anything else as text (``?`` for a missing value)."""
    if value is None:
        return "?"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("dataset_card"))),
        undefined=jinja2.StrictUndefined,  # a typo in the template fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML
    )
    env.filters["n"] = _number
    return env


def render_body(folder: str | Path, stats: ReleaseStats, repo_id: str = DEFAULT_REPO_ID) -> str:
    """The markdown body of the card (everything after the YAML front matter)."""
    ctx = card_context(folder, stats, repo_id)
    return _environment().get_template(TEMPLATE).render(**ctx)


def render_figures(folder: str | Path, stats: ReleaseStats) -> list[str]:
    """The card's figures (``spa_vl.card.plots.draw_figures``, Pillow). A failure to write them
    is raised as it is (it names the file); any other is a RuntimeError that says it was the
    figures."""
    from spa_vl.card.plots import draw_figures

    try:
        return draw_figures(folder, stats)
    except OSError:
        raise
    except Exception as exc:
        raise RuntimeError(f"drawing the card's figures failed: {type(exc).__name__}: {exc}") from exc


def render_card(
    folder: str | Path,
    repo_id: str | None = None,
    *,
    stats: ReleaseStats | None = None,
    update_manifest: bool = True,
) -> list[str]:
    """Write README.md, the plots and croissant.json of a release from its data.

    ``repo_id`` (``ORG/NAME``) goes into the loading examples; by default the one of the
    previous rendering, else a placeholder. ``stats``: what the data holds, when the caller
    has it (the build); else read from the folder. Returns the relative paths written; with
    ``update_manifest`` their MANIFEST.json entries are refreshed (new files added).
    """
    folder = Path(folder)
    repo_id = repo_id or existing_repo_id(folder) or DEFAULT_REPO_ID
    stats = stats if stats is not None else read_stats(folder)
    meta = card_metadata(folder, stats)
    written = render_figures(folder, stats)
    write_card(folder / "README.md", meta, render_body(folder, stats, repo_id))
    write_croissant(folder, card_context(folder, stats, repo_id))
    written += ["README.md", CROISSANT_NAME]
    if update_manifest and (folder / "MANIFEST.json").is_file():
        # The card summarises the audit report, so the report ships (and is verified) with it.
        audit = [AUDIT_REPORT] if (folder / AUDIT_REPORT).is_file() else []
        refresh_manifest(folder, written + audit)
    return written


def render_build_card(folder: str | Path, stats: ReleaseStats) -> list[str]:
    """The build's card step: the card and its plots from the figures the build gathered while
    writing (no data file is read); returns the files written, for the build's manifest."""
    return render_card(folder, stats=stats, update_manifest=False)
