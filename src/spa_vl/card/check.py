"""Offline checks of a release's card against its files (``spa-vl card DIR --check``).

The Hub's own validator is not reachable offline, so this catches what it would and more: the
YAML parses; the metadata validates against ``schema/card_metadata.schema.json``; every config
has data files and they exist; ``dataset_info`` counts, sizes and features equal what the
parquet files hold; the body, rendered again from the data, is what the card says; the plots
and ``croissant.json`` are there and current. Every problem names the file and the field.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import datasets
import jsonschema
import pyarrow.parquet as pq
import yaml

from spa_vl._resources import schema_path
from spa_vl.card.content import DEFAULT_REPO_ID, card_context, existing_repo_id
from spa_vl.card.croissant import CROISSANT_NAME, croissant_text
from spa_vl.card.stats import ReleaseStats, read_stats, size_category
from spa_vl.features import spa_vl_features
from spa_vl.names import SPLITS
from spa_vl.problems import Issue
from spa_vl.release.layout import ReleaseLayout
from spa_vl.release.manifest import MANIFEST_NAME, ManifestError, ReleaseManifest, path_problem
from spa_vl.release.metadata import data_files, features_yaml, metadata_problems, read_front_matter
from spa_vl.taxonomy import CONFIGS

SCHEMA_NAME = "card_metadata.schema.json"
_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_PLACE = re.compile(r"^[^\s:]+$")  # `configs[misinformation].data_files`, `license`: one token


@cache
def card_schema() -> dict:
    return json.loads(schema_path(SCHEMA_NAME).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class CardProblem(Issue):
    """One problem of the card: ``where`` is the file and, when there is one, the place in it
    (``README.md: configs[misinformation].data_files``); ``code`` the check that found it."""

    where: str
    code: str
    message: str

    @classmethod
    def from_text(cls, text: str, code: str, folder: Path) -> CardProblem:
        """Split ``FILE: PLACE: message`` (or ``FILE: message``) so that ``str()`` gives
        ``text`` back: the place joins ``where`` only when it is one token (no spaces)."""
        start = len(str(folder)) if text.startswith(str(folder)) else 0
        cut = text.find(": ", start)
        if cut < 0:
            return cls(str(folder), code, text)
        where, message = text[:cut], text[cut + 2 :]
        place, sep, rest = message.partition(": ")
        if sep and rest and _PLACE.match(place):
            where, message = f"{where}: {place}", rest
        return cls(where, code, message)


def check_release(folder: str | Path) -> list[str]:
    """Every problem of the card of release ``folder`` as ``FILE: PLACE: message`` lines
    (empty when the card is right); ``card_problems`` gives the same as ``CardProblem``s."""
    return [str(p) for p in card_problems(folder)]


def card_problems(folder: str | Path) -> list[CardProblem]:
    """Every problem of the card of release ``folder`` (empty when the card is right)."""
    folder = Path(folder)
    readme = folder / "README.md"

    def found(code: str, texts: list[str]) -> list[CardProblem]:
        return [CardProblem.from_text(t, code, folder) for t in texts]

    special = _special_data_files(folder)
    if special:
        return found("data-files", special)  # reading them would block or fail
    try:
        meta, body = read_front_matter(readme)
    except (OSError, ValueError) as exc:
        return found("front-matter", [str(exc)])
    try:
        stats = read_stats(folder)
    except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors and OSErrors
        return [CardProblem(str(folder / "data"), "data-files", f"a parquet file cannot be read: {exc}")]
    problems: list[CardProblem] = []
    checks: list[tuple[str, str, Callable[[], list[str]]]] = [
        ("metadata-schema", "metadata schema", lambda: schema_problems(meta, readme)),
        ("configs", "configs", lambda: config_problems(meta, folder)),
        ("data-files", "data files", lambda: metadata_problems(folder)),
        ("manifest", "manifest data files", lambda: manifest_problems(folder)),
        ("features", "dataset_info features", lambda: feature_problems(meta, folder)),
        ("sizes", "dataset_info sizes", lambda: size_problems(meta, folder, stats)),
        ("body", "body", lambda: body_problems(folder, readme, body, stats)),
        ("assets", "plots and croissant", lambda: asset_problems(folder, body, stats)),
    ]
    for code, name, check in checks:
        try:
            problems += found(code, check())
        except Exception as exc:  # a broken card must give a message, not a traceback
            problems.append(
                CardProblem(str(readme), code, f"could not check {name}: {type(exc).__name__}: {exc}")
            )
    unique: dict[str, CardProblem] = {}
    for problem in problems:  # the same problem found by two checks: say it once
        unique.setdefault(str(problem), problem)
    return list(unique.values())


def _special_data_files(folder: Path) -> list[str]:
    """Shard entries of the data folders that are not regular files (a FIFO would block a
    reader)."""
    return [
        f"{path}: not a regular file; a release holds regular parquet files only"
        for path in ReleaseLayout.of(folder).all_named()
        if path.is_symlink() or not path.is_file()
    ]


# -- metadata -------------------------------------------------------------------------------


def _where(meta: dict, path: list) -> str:
    """``configs[misinformation].data_files`` rather than ``configs/4/data_files``."""
    out, node = "", meta
    for part in path:
        if isinstance(part, int):
            name = node[part].get("config_name") if isinstance(node[part], dict) else None
            out += f"[{name}]" if name else f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        node = node[part]
    return out or "<front matter>"


def _explain(error: jsonschema.ValidationError) -> tuple[list, str]:
    """(path, message) of a schema error, in words a card author can act on."""
    leaf = error
    # oneOf/anyOf: explain with the alternative of the value's own type (a string's enum,
    # not "is not of type 'array'").
    candidates = [e for e in error.context or [] if e.validator != "type"]
    if candidates:
        leaf = max(candidates, key=lambda e: len(e.absolute_path))
    path = list(leaf.absolute_path)
    if leaf.validator == "enum":
        close = difflib.get_close_matches(str(leaf.instance), leaf.validator_value, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        return path, f"{leaf.instance!r} is not an allowed value{hint}"
    if leaf.validator == "minItems" and leaf.instance == []:
        return path, "is empty"
    if isinstance(leaf.instance, (dict, list)) and leaf.message.startswith(("{", "[")):
        return path, "is " + leaf.message.split(" is ", 1)[-1]  # not the whole value again
    return path, leaf.message


def schema_problems(meta: dict, readme: Path) -> list[str]:
    """The metadata against ``schema/card_metadata.schema.json``."""
    validator = jsonschema.Draft202012Validator(card_schema())
    problems = []
    for error in sorted(validator.iter_errors(meta), key=lambda e: list(map(str, e.path))):
        path = list(error.absolute_path)
        if path == ["configs"] and error.validator == "contains":
            problems.append(f"{readme}: configs: no config is marked `default: true`")
        elif path == ["configs"] and error.validator == "maxContains":
            problems.append(f"{readme}: configs: more than one config is marked `default: true`")
        else:
            where, message = _explain(error)
            problems.append(f"{readme}: {_where(meta, where)}: {message}")
    return problems


def config_problems(meta: dict, folder: Path) -> list[str]:
    """Every spa-vl config with data files is declared once in ``configs`` and
    ``dataset_info``, and nothing else is (the schema checks each entry's shape, e.g. a config
    without data files; ``metadata_problems`` that declared files exist)."""
    readme = folder / "README.md"
    on_disk = data_files(folder)
    problems = []
    for key in ("configs", "dataset_info"):
        entries = meta.get(key) or []
        if isinstance(entries, dict):
            entries = [entries]
        names = [e.get("config_name", "default") for e in entries if isinstance(e, dict)]
        for config in CONFIGS:
            if config not in names and on_disk.get(config):
                problems.append(f"{readme}: {key}: config {config!r} is missing (it has data files)")
        for name in names:
            if name not in CONFIGS:
                problems.append(f"{readme}: {key}[{name}]: not a spa-vl config")
            elif names.count(name) > 1:
                problems.append(f"{readme}: {key}[{name}]: declared more than once")
    return problems


def manifest_problems(folder: Path) -> list[str]:
    """Parquet files that MANIFEST.json lists but the folder lacks (paths that would leave the
    folder are `spa-vl verify`'s to report, and are not looked at here)."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        return [f"{path}: missing (it lists the data files the card describes)"]
    try:
        manifest = ReleaseManifest.load(folder)
    except ManifestError as exc:
        return [str(exc)]
    return [
        f"{folder / f.path}: data file of config {f.config!r} split {f.split!r} "
        "is listed in MANIFEST.json but missing"
        for f in manifest.data_files()
        if path_problem(f.path) is None and not (folder / f.path).is_file()
    ]


def _dtype_text(dtype: object) -> str:
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, dict) and "class_label" in dtype:
        names = (dtype["class_label"] or {}).get("names") or {}
        return f"class_label ({len(names)} names)"
    return yaml.safe_dump(dtype, default_flow_style=True, width=1000).strip()


def _file_features(paths: list[Path]) -> dict[str, object] | None:
    """Feature name -> YAML dtype, from the ``huggingface`` metadata of the first shard."""
    if not paths:
        return None
    feats = datasets.Features.from_arrow_schema(pq.read_schema(paths[0]))
    return {f["name"]: f.get("dtype", f) for f in features_yaml(feats)}


def feature_problems(meta: dict, folder: Path) -> list[str]:
    """``dataset_info`` features equal the parquet files' features, and those the contract."""
    readme = folder / "README.md"
    files = data_files(folder)
    contract = {f["name"]: f.get("dtype", f) for f in features_yaml(spa_vl_features())}
    infos = meta.get("dataset_info") or []
    problems = []
    for info in [infos] if isinstance(infos, dict) else infos:
        if not isinstance(info, dict):
            continue
        config = info.get("config_name", "default")
        paths = [p for split in SPLITS for p in files.get(config, {}).get(split, [])]
        held = _file_features(paths)
        if held is None:
            continue  # no files: reported by the data-file checks
        card = {f.get("name"): f.get("dtype", f) for f in info.get("features") or [] if isinstance(f, dict)}
        where = f"{readme}: dataset_info[{config}].features"
        for name, dtype in held.items():
            if name not in card:
                problems.append(f"{where}[{name}]: missing; the parquet files hold it")
            elif card[name] != dtype:
                problems.append(
                    f"{where}[{name}]: the card says {_dtype_text(card[name])}, "
                    f"the parquet files hold {_dtype_text(dtype)}"
                )
        problems += [
            f"{where}[{name}]: not a column of the parquet files" for name in card if name not in held
        ]
        if held != contract:
            bad = [n for n in contract if held.get(n) != contract[n]] or list(held)
            problems.append(
                f"{folder / 'data' / config}: parquet features differ from the spa-vl schema "
                f"at {', '.join(bad)}"
            )
    return problems


def size_problems(meta: dict, folder: Path, stats: ReleaseStats) -> list[str]:
    """``download_size`` and ``dataset_size`` agree with the files; the size category fits."""
    readme = folder / "README.md"
    problems = []
    want = size_category(stats.total("default"))
    cats = meta.get("size_categories")
    cats = [cats] if isinstance(cats, str) else cats or []
    if cats != [want]:
        problems.append(
            f"{readme}: size_categories is {cats}, but the default config holds "
            f"{stats.total('default'):,} rows ({want})"
        )
    infos = meta.get("dataset_info") or []
    for info in [infos] if isinstance(infos, dict) else infos:
        if not isinstance(info, dict):
            continue
        config = info.get("config_name", "default")
        if config not in stats.parquet_bytes:
            continue
        where = f"{readme}: dataset_info[{config}]"
        on_disk = stats.parquet_bytes[config]
        if "download_size" in info and info["download_size"] != on_disk:
            problems.append(
                f"{where}.download_size is {info['download_size']}, but its parquet files "
                f"take {on_disk} bytes"
            )
        splits = [s for s in info.get("splits") or [] if isinstance(s, dict)]
        total = sum(s.get("num_bytes") or 0 for s in splits)
        if "dataset_size" in info and info["dataset_size"] != total:
            problems.append(
                f"{where}.dataset_size is {info['dataset_size']}, but its splits' num_bytes add up to {total}"
            )
        names = [s.get("name") for s in splits]
        on_disk = data_files(folder).get(config, {})
        for split in SPLITS:
            if split not in names and on_disk.get(split):
                problems.append(f"{where}.splits: split {split!r} is missing (it has files)")
    return problems


# -- body and assets ------------------------------------------------------------------------


def _section(lines: list[str], index: int) -> str:
    for line in reversed(lines[: index + 1]):
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return "top"


def body_problems(folder: Path, readme: Path, body: str, stats: ReleaseStats) -> list[str]:
    """Render the body from the data again; report the first line where the card differs."""
    from spa_vl.card.render import render_body

    repo_id = existing_repo_id(folder) or DEFAULT_REPO_ID
    expected = render_body(folder, stats, repo_id)
    if body == expected:
        return []
    have, want = body.splitlines(), expected.splitlines()
    offset = readme.read_text(encoding="utf-8").count("\n") - body.count("\n")
    first = next(
        (i for i, (a, b) in enumerate(zip(have, want, strict=False)) if a != b),
        min(len(have), len(want)),
    )
    differing = sum(a != b for a, b in zip(have, want, strict=False)) + abs(len(have) - len(want))
    got = have[first] if first < len(have) else "<end of file>"
    exp = want[first] if first < len(want) else "<end of file>"
    numbers = [
        f"{a} -> {b}" for a, b in zip(_NUMBER.findall(got), _NUMBER.findall(exp), strict=False) if a != b
    ]
    what = f"numbers differ ({', '.join(numbers)})" if numbers else "text differs"
    return [
        f"{readme}: body, section {_section(want, min(first, len(want) - 1))!r}, line "
        f"{offset + first + 1}: {what}: the card says {got.strip()!r}, the data gives "
        f"{exp.strip()!r} ({differing} line(s) differ; run `spa-vl card {folder}`)"
    ]


def _first_difference(a: object, b: object, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return path or "<root>"


def asset_problems(folder: Path, body: str, stats: ReleaseStats) -> list[str]:
    """Images the body shows exist; croissant.json exists and matches the data."""
    problems = [
        f"{folder / link}: shown in README.md but missing"
        for link in _IMAGE_LINK.findall(body)
        if "://" not in link and not (folder / link).is_file()
    ]
    path = folder / CROISSANT_NAME
    if not path.is_file():
        return [*problems, f"{path}: missing; run `spa-vl card {folder}`"]
    try:
        have = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [*problems, f"{path}: not JSON: {exc}"]
    ctx = card_context(folder, stats, existing_repo_id(folder) or DEFAULT_REPO_ID)
    want = json.loads(croissant_text(ctx))
    if have != want:
        problems.append(
            f"{path}: {_first_difference(have, want)} disagrees with the data; run `spa-vl card {folder}`"
        )
    return problems
