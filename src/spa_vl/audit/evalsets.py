"""Eval-set adapters: each turns one published file layout into ``EvalItem``s.

Formats are those of ``SPA_VL_FACTS.md``. An adapter reads every question variant a set has
(FigStep's question and instruction, MM-SafetyBench's four phrasings, ...). A file without the
columns an adapter needs raises ``EvalSetError`` naming the expected and the found columns.
Images are resolved against the file's folder (or ``image_root``); a missing image is counted,
not fatal, so a text-only copy of a set can still be audited.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from spa_vl.sources.images import FolderImages, ImageLoadError


class EvalSetError(ValueError):
    """An eval-set file that cannot be read in the requested format."""


@dataclass
class EvalItem:
    id: str
    field: str  # the set's own name for the text (goal, question, instruction, ...) or "image"
    text: str | None
    is_answer: bool = False  # a reference answer or target, not a prompt
    image: bytes | None = None
    image_label: str | None = None


@dataclass
class EvalSet:
    name: str
    format: str
    path: Path
    items: list[EvalItem]
    missing_images: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_texts(self) -> int:
        """Prompts (questions, instructions, goals)."""
        return sum(1 for it in self.items if it.text and it.field != "image" and not it.is_answer)

    @property
    def n_answers(self) -> int:
        """Reference answers and targets (audited with ``--answers``)."""
        return sum(1 for it in self.items if it.text and it.is_answer)

    @property
    def n_images(self) -> int:
        return sum(1 for it in self.items if it.image is not None)


@dataclass
class _Options:
    text_fields: tuple[str, ...] = ()
    image_field: str | None = None
    id_field: str | None = None
    image_root: Path | None = None
    load_images: bool = True
    missing_images: int = 0  # counted by the adapters as they go


# ---------------------------------------------------------------- readers of raw files


def _read_text(path: Path) -> str:
    """The file as text: UTF-8 (a BOM dropped), not empty, or ``EvalSetError`` saying where."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalSetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EvalSetError(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} "
            f"(offset {exc.start}); re-save the file as UTF-8"
        ) from None
    if not text.strip():
        raise EvalSetError(f"{path}: the file is empty")
    return text


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    # newline="" lets csv accept CRLF files
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise EvalSetError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return [c.strip() for c in reader.fieldnames or []], rows


def _read_json(path: Path) -> object:
    text = _read_text(path)
    if path.suffix.lower() == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalSetError(f"{path}: malformed JSON at line {lineno}: {exc.msg}") from None
        return records
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvalSetError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise EvalSetError(f"{path}: JSON nested too deeply to read") from None


def _text(path: Path, where: str, value: object) -> str | None:
    """A text field's value: a string or null; anything else names its place."""
    if value is None or isinstance(value, str):
        return value
    raise EvalSetError(f"{path}: {where}: expected text, found {type(value).__name__} {value!r:.40}")


def _objects(path: Path, fmt: str, data: object, needed: str) -> list[dict]:
    """``data`` as a list of objects, or ``EvalSetError`` naming the first record that is not."""
    if not isinstance(data, list):
        raise EvalSetError(
            f"{path}: not a {fmt} file: expected a JSON list of objects{needed}, "
            f"found a JSON {type(data).__name__}"
        )
    for i, x in enumerate(data):
        if not isinstance(x, dict):
            raise EvalSetError(
                f"{path}: record {i + 1}: expected an object{needed}, found {type(x).__name__}"
            )
    return data


def _require(
    path: Path, fmt: str, found: Iterable[str], needed: Iterable[str], where: str = "columns"
) -> None:
    found, needed = list(found), list(needed)
    missing = [c for c in needed if c not in found]
    if missing:
        raise EvalSetError(
            f"{path}: not a {fmt} file: expected {where} {', '.join(needed)}; "
            f"missing {', '.join(missing)} (found: {', '.join(map(str, found)) or 'none'})"
        )


def _list_of_objects(path: Path, fmt: str, needed: list[str]) -> list[dict]:
    data = _objects(path, fmt, _read_json(path), f" with fields {', '.join(needed)}")
    if data:
        _require(path, fmt, data[0].keys(), needed, "fields")
    return data


class _Images:
    """Finds an eval set's images by relative path under a few likely roots."""

    def __init__(self, roots: list[Path], opts: _Options):
        self.stores = [FolderImages(r) for r in roots if r.is_dir()]
        self.opts = opts

    def read(self, rel: str | None, count_missing: bool = True) -> bytes | None:
        if not rel or not self.opts.load_images:
            return None
        for store in self.stores:
            try:
                return store.read(rel)
            except ImageLoadError:
                continue
        self.opts.missing_images += count_missing
        return None


def _image_roots(path: Path, opts: _Options, extra: Iterable[str] = ()) -> list[Path]:
    base = opts.image_root or (path if path.is_dir() else path.parent)
    return [base, *(base / e for e in ("images", "imgs", *extra))]


# ---------------------------------------------------------------- adapters


def read_advbench(path: Path, opts: _Options) -> list[EvalItem]:
    """``harmful_behaviors.csv`` (goal, target); also ``harmful_strings.csv`` (target only)."""
    cols, rows = _read_csv(path)
    if cols == ["target"]:  # harmful_strings.csv: harmful outputs, audited against answers
        return [EvalItem(f"{path.name}:{i}", "target", r["target"], True) for i, r in enumerate(rows, 1)]
    _require(path, "advbench", cols, ["goal", "target"])
    items = []
    for i, r in enumerate(rows, 1):
        items.append(EvalItem(f"{path.name}:{i}", "goal", r["goal"]))
        items.append(EvalItem(f"{path.name}:{i}", "target", r["target"], True))
    return items


def read_figstep(path: Path, opts: _Options) -> list[EvalItem]:
    """FigStep SafeBench: the question and its statement-form rewrite (the rendered text)."""
    cols, rows = _read_csv(path)
    _require(path, "figstep", cols, ["category_id", "task_id", "question", "instruction"])
    items = []
    for r in rows:
        id_ = f"{r.get('dataset') or 'SafeBench'}/{r['category_id']}/{r['task_id']}"
        items += [
            EvalItem(id_, "question", r["question"]),
            EvalItem(id_, "instruction", r["instruction"]),
        ]
    return items


MMSB_VARIANTS = ("Question", "Changed Question", "Rephrased Question", "Rephrased Question(SD)")


def read_mm_safetybench(path: Path, opts: _Options) -> list[EvalItem]:
    """``processed_questions/NN-Scenario.json`` (a folder of them or one file); images, when
    present, under ``imgs/<scenario>/{SD,SD_TYPO,TYPO}/<id>.jpg``."""
    if path.is_dir():
        folder = path / "processed_questions" if (path / "processed_questions").is_dir() else path
        files = sorted(folder.glob("*.json"))
        if not files:
            raise EvalSetError(
                f"{path}: not a mm-safetybench folder: expected processed_questions/NN-<Scenario>.json files"
            )
        root = folder.parent if folder.name == "processed_questions" else folder
    else:
        files = [path]
        root = path.parent.parent if path.parent.name == "processed_questions" else path.parent
    images = _Images(_image_roots(root, opts), opts)
    items = []
    for file in files:
        data = _read_json(file)
        bad = (
            next((k for k, v in data.items() if not isinstance(v, dict)), None)
            if isinstance(data, dict)
            else None
        )
        if not isinstance(data, dict) or bad is not None:
            where = f"record {bad!r}: " if bad is not None else ""
            raise EvalSetError(
                f"{file}: {where}not a mm-safetybench file: expected an object keyed by id "
                f"whose values have {', '.join(MMSB_VARIANTS)}"
            )
        for key, value in data.items():
            _require(file, "mm-safetybench", value.keys(), ["Question"], "fields")
            id_ = f"{file.stem}/{key}"
            items += [
                EvalItem(id_, v, _text(file, f"record {key!r} field {v!r}", value[v]))
                for v in MMSB_VARIANTS
                if value.get(v)
            ]
            for kind in ("SD", "SD_TYPO", "TYPO"):
                rel = f"{file.stem}/{kind}/{key}.jpg"
                # images are optional in this layout: a text-only copy is not "missing" anything
                data_ = images.read(rel, count_missing=False)
                if data_ is not None:
                    items.append(
                        EvalItem(
                            id_,
                            "image",
                            value.get("Rephrased Question") or value["Question"],
                            image=data_,
                            image_label=rel,
                        )
                    )
    return items


def read_vlguard(path: Path, opts: _Options) -> list[EvalItem]:
    data = _list_of_objects(path, "vlguard", ["id", "image", "instr-resp"])
    images = _Images(_image_roots(path, opts, ("test",)), opts)
    items = []
    for i, obj in enumerate(data, 1):
        id_ = str(obj["id"])
        first = None
        pairs = obj.get("instr-resp") or []
        if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
            raise EvalSetError(f"{path}: record {i} (id {id_}): instr-resp: expected a list of objects")
        for j, pair in enumerate(pairs):
            for key in ("safe_instruction", "unsafe_instruction", "instruction", "response"):
                _text(path, f"record {i} (id {id_}) field instr-resp[{j}].{key}", pair.get(key))
            for key in ("safe_instruction", "unsafe_instruction", "instruction"):
                if pair.get(key):
                    items.append(EvalItem(id_, f"instr-resp[{j}].{key}", pair[key]))
                    first = first or pair[key]
            if pair.get("response"):
                items.append(EvalItem(id_, f"instr-resp[{j}].response", pair["response"], True))
        _add_image(items, images, id_, obj.get("image"), first)
    return items


def read_siuo(path: Path, opts: _Options) -> list[EvalItem]:
    data = _list_of_objects(path, "siuo", ["question_id", "image", "question"])
    images = _Images(_image_roots(path, opts), opts)
    items = []
    for i, obj in enumerate(data, 1):
        id_ = str(obj["question_id"])
        for key in ("question", "reference_answer"):
            _text(path, f"record {i} (question_id {id_}) field {key!r}", obj.get(key))
        items.append(EvalItem(id_, "question", obj["question"]))
        if obj.get("reference_answer"):
            items.append(EvalItem(id_, "reference_answer", obj["reference_answer"], True))
        _add_image(items, images, id_, obj.get("image"), obj["question"])
    return items


def read_vlsbench(path: Path, opts: _Options) -> list[EvalItem]:
    data = _list_of_objects(path, "vlsbench", ["instruction_id", "instruction", "image_path"])
    images = _Images(_image_roots(path, opts), opts)
    items = []
    for i, obj in enumerate(data, 1):
        id_ = str(obj["instruction_id"])
        _text(path, f"record {i} (instruction_id {id_}) field 'instruction'", obj["instruction"])
        items.append(EvalItem(id_, "instruction", obj["instruction"]))
        _add_image(items, images, id_, obj.get("image_path"), obj["instruction"])
    return items


def read_jailbreakv(path: Path, opts: _Options) -> list[EvalItem]:
    cols, rows = _read_csv(path)
    _require(path, "jailbreakv", cols, ["jailbreak_query", "redteam_query", "image_path"])
    images = _Images(_image_roots(path, opts), opts)
    items = []
    for i, r in enumerate(rows, 1):
        id_ = r.get("id") or f"{path.name}:{i}"
        items += [
            EvalItem(id_, "redteam_query", r["redteam_query"]),
            EvalItem(id_, "jailbreak_query", r["jailbreak_query"]),
        ]
        _add_image(items, images, id_, r.get("image_path"), r["redteam_query"])
    return items


def read_spa_vl(path: Path, opts: _Options) -> list[EvalItem]:
    """The test split (HarmEval + HelpEval) of a release folder or a Hub-layout folder."""
    import pyarrow.parquet as pq

    from spa_vl.release.layout import ReleaseLayout, is_release

    release = ReleaseLayout.of(path).files("default", "test") if is_release(path) else []
    if release:
        import pyarrow as pa

        items = []
        for file in release:
            try:
                table = pq.read_table(file, columns=["id", "question", "image"])
            except (OSError, pa.ArrowException) as exc:  # not parquet, damaged, a column missing
                raise EvalSetError(f"{file}: cannot read the spa-vl test split: {exc}") from None
            for row in table.to_pylist():
                items.append(EvalItem(row["id"], "question", row["question"]))
                _add_bytes(items, row["id"], row.get("image"), row["question"], opts)
        return items
    if any(path.glob("test/*.parquet")):
        from spa_vl.sources import open_source

        items = []
        for row in open_source(path, "hub").rows():
            rec = row.record or {}
            if rec.get("split") != "test":
                continue
            items.append(EvalItem(rec["id"], "question", rec.get("question")))
            _add_bytes(items, rec["id"], rec.get("image"), rec.get("question"), opts)
        return items
    raise EvalSetError(
        f"{path}: not a spa-vl folder: expected a release folder "
        "(data/<folder>/test-*.parquet with columns id, question, image) or a Hub-layout "
        "folder (test/harm-*.parquet, test/help-*.parquet with columns image, question)"
    )


GENERIC_TEXT_FIELDS = ("question", "prompt", "instruction", "goal", "query", "text")


def read_generic(path: Path, opts: _Options, fmt: str) -> list[EvalItem]:
    """CSV, JSON (a list of objects) or JSON Lines with ``--text-field`` / ``--image-field``."""
    if fmt == "csv":
        cols, rows = _read_csv(path)
    else:
        data = _objects(path, fmt, _read_json(path), "")
        rows, cols = data, list(data[0]) if data else []
    fields = list(opts.text_fields) or [next((c for c in GENERIC_TEXT_FIELDS if c in cols), "question")]
    _require(path, fmt, cols, fields + [f for f in (opts.image_field, opts.id_field) if f])
    images = _Images(_image_roots(path, opts), opts)
    items = []
    for i, r in enumerate(rows, 1):
        if opts.id_field and r.get(opts.id_field) in (None, ""):
            raise EvalSetError(f"{path}: record {i}: no id in field {opts.id_field!r}")
        id_ = str(r[opts.id_field]) if opts.id_field else f"{path.name}:{i}"
        items += [EvalItem(id_, f, _text(path, f"record {i} field {f!r}", r[f])) for f in fields if r.get(f)]
        if opts.image_field:
            _add_image(items, images, id_, r.get(opts.image_field), r.get(fields[0]))
    return items


def _add_image(items: list[EvalItem], images: _Images, id_: str, rel, text) -> None:
    if isinstance(rel, str):
        data = images.read(rel)
        if data is not None:
            items.append(EvalItem(id_, "image", text, image=data, image_label=rel))


def _add_bytes(items: list[EvalItem], id_: str, image, text, opts: _Options) -> None:
    data = image.get("bytes") if isinstance(image, dict) else None
    if data and opts.load_images:
        label = image.get("path") if isinstance(image, dict) else None
        items.append(EvalItem(id_, "image", text, image=bytes(data), image_label=label or id_))


Adapter = Callable[[Path, _Options], list[EvalItem]]
ADAPTERS: dict[str, Adapter] = {
    "advbench": read_advbench,
    "figstep": read_figstep,
    "mm-safetybench": read_mm_safetybench,
    "vlguard": read_vlguard,
    "siuo": read_siuo,
    "vlsbench": read_vlsbench,
    "jailbreakv": read_jailbreakv,
    "spa-vl": read_spa_vl,
    "csv": lambda p, o: read_generic(p, o, "csv"),
    "json": lambda p, o: read_generic(p, o, "json"),
    "jsonl": lambda p, o: read_generic(p, o, "jsonl"),
}
FORMATS = tuple(ADAPTERS)
EXPECTED = {
    "advbench": "CSV with columns goal,target",
    "figstep": "CSV with columns dataset,category_id,task_id,category_name,question,instruction",
    "mm-safetybench": "processed_questions/NN-<Scenario>.json: {id: {Question, ...}}",
    "vlguard": "JSON list of {id, image, safe, harmful_category, instr-resp}",
    "siuo": "JSON list of {question_id, image, question, safety_warning, reference_answer}",
    "vlsbench": "JSON list of {instruction_id, instruction, image_path, ...}",
    "jailbreakv": "CSV with columns jailbreak_query, redteam_query, image_path, policy, ...",
    "spa-vl": "release folder (data/<folder>/test-*.parquet) or Hub-layout folder (test/*.parquet)",
    "csv": "CSV with --text-field columns",
    "json": "JSON list of objects with --text-field fields",
    "jsonl": "JSON Lines objects with --text-field fields",
}


def detect_format(path: Path) -> str:
    """Guess the adapter from the file's columns or the folder's layout."""
    if path.is_dir():
        from spa_vl.release.layout import ReleaseLayout, is_release

        if (is_release(path) and ReleaseLayout.of(path).files("default", "test")) or any(
            path.glob("test/*.parquet")
        ):
            return "spa-vl"
        if (path / "processed_questions").is_dir() or any(path.glob("[0-9][0-9]-*.json")):
            return "mm-safetybench"
    elif path.suffix.lower() == ".csv":
        cols, _ = _read_csv(path)
        if "goal" in cols or cols == ["target"]:
            return "advbench"
        if {"question", "instruction", "task_id"} <= set(cols):
            return "figstep"
        if "redteam_query" in cols:
            return "jailbreakv"
        return "csv"
    elif path.suffix.lower() in (".json", ".jsonl"):
        data = _read_json(path)
        if (
            isinstance(data, dict)
            and data
            and all(isinstance(v, dict) and "Question" in v for v in data.values())
        ):
            return "mm-safetybench"
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        if "instr-resp" in first:
            return "vlguard"
        if "question_id" in first and "question" in first:
            return "siuo"
        if "instruction_id" in first:
            return "vlsbench"
        return path.suffix.lower().lstrip(".")
    raise EvalSetError(
        f"{path}: unknown eval-set layout; name a format (NAME=PATH:FORMAT), one of: "
        + "; ".join(f"{k} ({v})" for k, v in EXPECTED.items())
    )


def load_eval_set(
    name: str,
    path: str | Path,
    format: str = "auto",
    *,
    text_fields: Iterable[str] = (),
    image_field: str | None = None,
    id_field: str | None = None,
    image_root: str | Path | None = None,
    load_images: bool = True,
) -> EvalSet:
    """Read one eval set with the named adapter (``auto`` guesses it)."""
    path = Path(path)
    if not path.exists():
        raise EvalSetError(f"{path}: no such file or folder (eval set {name!r})")
    if not path.is_dir() and not path.is_file():  # a FIFO or a device would block or never end
        raise EvalSetError(f"{path}: not a regular file or folder (eval set {name!r})")
    if format == "auto":
        format = detect_format(path)
    if format not in ADAPTERS:
        raise EvalSetError(f"unknown eval-set format {format!r}; formats: {', '.join(FORMATS)}")
    opts = _Options(
        tuple(text_fields),
        image_field,
        id_field,
        Path(image_root) if image_root else None,
        load_images,
    )
    try:
        items = ADAPTERS[format](path, opts)
    except (KeyError, TypeError, AttributeError) as exc:
        raise EvalSetError(f"{path}: not a {format} file ({EXPECTED[format]}): {exc!r}") from None
    return EvalSet(name, format, path, items, opts.missing_images)


# what a ":FORMAT" suffix looks like, as opposed to a colon inside a path
_FORMAT_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def parse_eval_spec(spec: str) -> tuple[str, str, str]:
    """``NAME=PATH[:FORMAT]`` (or just ``PATH``, if it exists) to (name, path, format).

    A bare word that is no file (``--eval advbench``) and a ``:FORMAT`` that names no adapter
    are refused with what was expected, rather than read as a path that does not exist."""
    expected = f"expected NAME=PATH[:FORMAT] (formats: {', '.join(FORMATS)})"
    name, sep, rest = spec.partition("=")
    if not sep:
        if not Path(spec).exists():
            raise EvalSetError(f"--eval {spec!r}: {expected}; {spec!r} is no file or folder either")
        name, rest = "", spec
    if not name.strip() and sep:
        raise EvalSetError(f"--eval {spec!r}: the NAME before '=' is empty; {expected}")
    path, fmt = rest, "auto"
    head, colon, tail = rest.rpartition(":")
    if colon and tail in FORMATS:
        path, fmt = head, tail
    elif colon and head and _FORMAT_LIKE.fullmatch(tail) and not Path(rest).exists():
        raise EvalSetError(f"--eval {spec!r}: unknown format {tail!r}; formats: {', '.join(FORMATS)}")
    if not path:
        raise EvalSetError(f"--eval {spec!r}: no PATH after '='; {expected}")
    return name, path, fmt


def load_eval_spec(
    spec: str,
    *,
    text_fields: Iterable[str] = (),
    image_field: str | None = None,
    id_field: str | None = None,
    image_roots: dict[str, str] | None = None,
    load_images: bool = True,
) -> EvalSet:
    """The eval set of one ``--eval NAME=PATH[:FORMAT]`` option; without a NAME it is named
    after its format. ``image_roots`` maps set names to their image folders."""
    name, path, fmt = parse_eval_spec(spec)
    es = load_eval_set(
        name or fmt,
        path,
        fmt,
        text_fields=text_fields,
        image_field=image_field,
        id_field=id_field,
        image_root=(image_roots or {}).get(name),
        load_images=load_images,
    )
    if not name:
        es.name = es.format
    return es
