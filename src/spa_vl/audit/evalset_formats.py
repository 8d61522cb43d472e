"""The adapters of published eval-set layouts (AdvBench, FigStep, MM-SafetyBench, VLGuard,
SIUO, VLSBench, JailBreakV) and of generic CSV / JSON / JSON Lines files; SPA-VL's own folders
are read by ``spa_vl_set``."""

from __future__ import annotations

from pathlib import Path

from spa_vl.audit.evalset_items import (
    EvalItem,
    EvalSetError,
    _add_image,
    _image_roots,
    _Images,
    _list_of_objects,
    _objects,
    _Options,
    _read_csv,
    _read_json,
    _require,
    _text,
)


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


def _question_per_record(
    path: Path, opts: _Options, fmt: str, id_key: str, text_key: str, image_key: str, answer_key: str | None
) -> list[EvalItem]:
    """A JSON list of records, each one question (``text_key``) with an image (``image_key``)
    and, when ``answer_key`` is given, an optional reference answer."""
    data = _list_of_objects(path, fmt, [id_key, image_key, text_key])
    images = _Images(_image_roots(path, opts), opts)
    items = []
    for i, obj in enumerate(data, 1):
        id_ = str(obj[id_key])
        for key in (text_key, answer_key) if answer_key else (text_key,):
            _text(path, f"record {i} ({id_key} {id_}) field {key!r}", obj.get(key))
        items.append(EvalItem(id_, text_key, obj[text_key]))
        if answer_key and obj.get(answer_key):
            items.append(EvalItem(id_, answer_key, obj[answer_key], True))
        _add_image(items, images, id_, obj.get(image_key), obj[text_key])
    return items


def read_siuo(path: Path, opts: _Options) -> list[EvalItem]:
    """SIUO: ``question_id``, ``image``, ``question`` and a ``reference_answer``."""
    return _question_per_record(path, opts, "siuo", "question_id", "question", "image", "reference_answer")


def read_vlsbench(path: Path, opts: _Options) -> list[EvalItem]:
    """VLSBench: ``instruction_id``, ``instruction``, ``image_path``."""
    return _question_per_record(path, opts, "vlsbench", "instruction_id", "instruction", "image_path", None)


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
