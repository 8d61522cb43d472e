"""Bad input: each test plants one fault into an otherwise good copy of the default sample,
validates it and checks that

- the problem names the file, the record (row) and the field: ``file:row > field: message``;
- the faulty record is in the quarantine JSONL with its reason, and only it;
- every good record is accepted, and read = accepted + quarantined.

Tests run inside the sample copy, so file names in messages are relative (``train.jsonl``).
Some messages are pinned word for word (golden text), as mlcroissant does.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.problems import Problem
from spa_vl.validate import ValidationReport, validate_source

TOTAL = 747  # rows of the default sample
TRAIN_SHARD_0 = "data/train-00000-of-00008.parquet"  # 67 rows: train/000000..000066


@dataclass
class Outcome:
    report: ValidationReport
    quarantine: list[dict]  # the quarantine JSONL, parsed

    @property
    def problems(self) -> list[Problem]:
        return [
            Problem(q["file"], q["row"], r["field"], r["code"], r["message"])
            for q in self.quarantine
            for r in q["reasons"]
        ]

    def find(self, field: str, code: str) -> Problem:
        found = [p for p in self.problems if (p.field, p.code) == (field, code)]
        assert found, f"no {code} on {field}; got {[str(p) for p in self.problems]}"
        return found[0]


def validate(src: Path, **options) -> Outcome:
    qfile = src.parent / (src.name + ".q.jsonl")
    report = validate_source(src, quarantine=qfile, **options)
    lines = qfile.read_text(encoding="utf-8").splitlines()
    assert report.read == report.accepted + report.quarantined
    assert report.reconciles
    assert len(lines) == report.quarantined
    return Outcome(report, [json.loads(line) for line in lines])


def assert_one_bad(
    out: Outcome,
    file: str,
    row: int,
    field: str,
    code: str,
    message: str | None = None,
    total: int = TOTAL,
) -> Problem:
    """Exactly one record quarantined, at ``file:row``, with ``code`` on ``field``."""
    assert (out.report.read, out.report.accepted, out.report.quarantined) == (total, total - 1, 1)
    [line] = out.quarantine
    assert (line["file"], line["row"]) == (file, row)
    problem = out.find(field, code)
    assert (problem.file, problem.row, problem.field, problem.code) == (file, row, field, code)
    if message is not None:
        assert problem.message == message
        assert f"{file}:{row} > {field}: {message}" in out.report.examples
    assert str(problem) in out.report.examples
    assert out.report.problems[code] >= 1
    return problem


# -- planting faults ------------------------------------------------------------------------------


@pytest.fixture
def jsonl(sample_copy, monkeypatch) -> Path:
    src = sample_copy("jsonl")
    monkeypatch.chdir(src)
    return src


@pytest.fixture
def hub(sample_copy, monkeypatch) -> Path:
    src = sample_copy("hub")
    monkeypatch.chdir(src)
    return src


@pytest.fixture
def rlhf(sample_copy, monkeypatch) -> Path:
    src = sample_copy("rlhf-json")
    monkeypatch.chdir(src)
    return src


def edit_line(file: Path, line_no: int, edit: Callable[[dict], object]) -> dict:
    """Apply ``edit`` to the record on 1-based line ``line_no``; ``edit`` may return bytes to
    replace the whole line. Returns the original record."""
    lines = file.read_bytes().split(b"\n")
    record = json.loads(lines[line_no - 1])
    original = dict(record)
    result = edit(record)
    lines[line_no - 1] = (
        result if isinstance(result, bytes) else json.dumps(record, ensure_ascii=False).encode("utf-8")
    )
    file.write_bytes(b"\n".join(lines))
    return original


def first_line(file: Path, predicate: Callable[[dict], bool]) -> tuple[int, dict]:
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        if predicate(record):
            return n, record
    raise AssertionError(f"no line of {file} matches")


def edit_parquet(file: Path, edit: Callable[[dict[str, list]], None]) -> None:
    """Rewrite a parquet file after ``edit`` changed its columns (name -> list of values)."""
    table = pq.read_table(file)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    edit(columns)
    types = {f.name: f.type for f in table.schema}
    new = pa.table({n: pa.array(v, types.get(n, pa.string())) for n, v in columns.items()})
    pq.write_table(new.replace_schema_metadata(table.schema.metadata), file)


def png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG of ``width`` x ``height`` black pixels: tiny on disk, huge decoded."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    idat = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def is_jpeg(record: dict) -> bool:
    return str(record.get("image", "")).endswith(".jpg")


# -- 1. malformed JSON line -----------------------------------------------------------------------


def test_malformed_json_line(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 3, lambda r: b'{"id": "train/000002", "split": "train",')
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        3,
        "<record>",
        "malformed-json",
        "malformed JSON: Expecting property name enclosed in double quotes at column 41",
    )
    assert out.quarantine[0]["raw"] == '{"id": "train/000002", "split": "train",'
    assert out.quarantine[0]["record"] is None


def test_line_that_is_not_an_object(jsonl: Path) -> None:
    edit_line(jsonl / "validation.jsonl", 2, lambda r: b'["validation/000001"]')
    out = validate(jsonl)
    assert_one_bad(
        out,
        "validation.jsonl",
        2,
        "<record>",
        "not-an-object",
        "the line is not a JSON object",
    )


def test_truncated_rlhf_json_keeps_what_was_read(rlhf: Path) -> None:
    text = (rlhf / "validation.json").read_text(encoding="utf-8")
    cut = text.index('"id": 10,')  # item 11 starts just before
    (rlhf / "validation.json").write_text(text[:cut], encoding="utf-8")
    out = validate(rlhf)
    # 10 validation items survive, the 11th is reported, the rest of the file is lost
    assert out.report.splits["validation"].read == 10
    assert out.report.splits["validation"].accepted == 10
    assert out.report.splits["unknown"].quarantined == 1  # an unparsed item has no split
    assert_one_bad(
        out,
        "validation.json",
        11,
        "<record>",
        "malformed-json",
        total=TOTAL - 106 + 11,
    )


# -- 2. non-UTF-8 bytes ---------------------------------------------------------------------------


def test_non_utf8_line(jsonl: Path) -> None:
    def latin1(record: dict) -> bytes:
        record["question"] = "Caf\u00e9 question?"
        return json.dumps(record, ensure_ascii=False).encode("latin-1")

    edit_line(jsonl / "train.jsonl", 5, latin1)
    out = validate(jsonl)
    problem = assert_one_bad(out, "train.jsonl", 5, "<record>", "not-utf8")
    assert problem.message.startswith("the line is not UTF-8 (byte 0xe9 at offset ")
    assert "Caf\\xe9" in out.quarantine[0]["raw"]


def test_non_utf8_rlhf_file_is_one_problem(rlhf: Path) -> None:
    data = (rlhf / "help.json").read_bytes()
    (rlhf / "help.json").write_bytes(data.replace(b"safely", b"saf\xe9ly", 1))
    out = validate(rlhf)
    assert out.report.read == out.report.accepted + out.report.quarantined
    problem = out.find("<file>", "not-utf8")
    assert problem.file == "help.json"


# -- 3. missing field -----------------------------------------------------------------------------


def test_missing_field(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 7, lambda r: r.pop("question"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        7,
        "question",
        "missing-field",
        "required field 'question' is missing",
    )
    assert out.quarantine[0]["id"] == "train/000006"


def test_missing_answer_names_the_split(jsonl: Path) -> None:
    edit_line(jsonl / "validation.jsonl", 1, lambda r: r.pop("rejected"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "validation.jsonl",
        1,
        "rejected",
        "missing-field",
        "required field 'rejected' is missing on validation rows",
    )


# -- 4. wrong type --------------------------------------------------------------------------------


def test_wrong_type(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 8, lambda r: r.update(chosen=42))
    out = validate(jsonl)
    assert_one_bad(out, "train.jsonl", 8, "chosen", "wrong-type", "must be string, got int 42")


def test_wrong_type_in_parquet(hub: Path) -> None:
    def edit(cols: dict[str, list]) -> None:
        cols["question"] = [str(i) if i != 4 else None for i in range(len(cols["question"]))]

    edit_parquet(hub / TRAIN_SHARD_0, edit)
    out = validate(hub)
    assert_one_bad(
        out,
        TRAIN_SHARD_0,
        5,
        "question",
        "wrong-type",
        "must be string, got NoneType None",
    )


# -- 5. empty or whitespace-only question ---------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   \t\n", "\u3000"])
def test_blank_question(jsonl: Path, question: str) -> None:
    edit_line(jsonl / "test.jsonl", 4, lambda r: r.update(question=question))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "test.jsonl",
        4,
        "question",
        "empty-text",
        "must hold text, not only whitespace",
    )


# -- 6. chosen equal to rejected ------------------------------------------------------------------


def test_chosen_equals_rejected(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 10, lambda r: r.update(rejected=r["chosen"] + "  "))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        10,
        "rejected",
        "identical-answers",
        "chosen and rejected are identical",
    )


# -- 7. unknown class string ----------------------------------------------------------------------


def test_unknown_class_string(jsonl: Path) -> None:
    # "scams" is the clean spelling; the data's (and the taxonomy's) string is "scamns".
    n, _ = first_line(jsonl / "validation.jsonl", lambda r: r["class3"] == "scamns")
    edit_line(jsonl / "validation.jsonl", n, lambda r: r.update(class3="scams"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "validation.jsonl",
        n,
        "class3",
        "unknown-label",
        "'scams' is not a SPA-VL subcategory",
    )


def test_unknown_domain_in_parquet(hub: Path) -> None:
    file = "validation/validation-00000-of-00001.parquet"
    edit_parquet(hub / file, lambda c: c["class1"].__setitem__(0, "Toxicity Harms"))
    out = validate(hub)
    assert_one_bad(
        out,
        file,
        1,
        "class1",
        "unknown-label",
        "'Toxicity Harms' is not a SPA-VL domain",
    )


# -- 8. class3 under the wrong class2 -------------------------------------------------------------


def test_class3_under_wrong_class2(jsonl: Path) -> None:
    n, _ = first_line(jsonl / "test.jsonl", lambda r: r["class2"] == "Toxic")
    edit_line(jsonl / "test.jsonl", n, lambda r: r.update(class3="cyber"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "test.jsonl",
        n,
        "class3",
        "label-mismatch",
        "'cyber' belongs under 'Security threats', not 'Toxic'",
    )


def test_class2_under_wrong_class1(jsonl: Path) -> None:
    n, _ = first_line(jsonl / "validation.jsonl", lambda r: r["class3"] == "cyber")
    edit_line(jsonl / "validation.jsonl", n, lambda r: r.update(class1="Misinformation Harms"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "validation.jsonl",
        n,
        "class2",
        "label-mismatch",
        "'Security threats' belongs under 'Malicious Use', not 'Misinformation Harms'",
    )


# -- 9. missing image file ------------------------------------------------------------------------


def test_missing_image_file(jsonl: Path) -> None:
    _, rec = first_line(jsonl / "train.jsonl", lambda r: r["id"] == "train/000011")
    (jsonl / "images" / rec["image"]).unlink()
    out = validate(jsonl)
    problem = assert_one_bad(out, "train.jsonl", 12, "image", "missing-image")
    assert problem.message == (f"image file {rec['image']!r} not found under {(jsonl / 'images').resolve()}")


def test_missing_zip_member(rlhf: Path) -> None:
    items = json.loads((rlhf / "harm.json").read_text(encoding="utf-8"))
    items[2]["image"] = "harm/absent.jpg"
    (rlhf / "harm.json").write_text(json.dumps(items), encoding="utf-8")
    out = validate(rlhf)
    assert_one_bad(
        out,
        "harm.json",
        3,
        "image",
        "missing-image",
        f"image 'harm/absent.jpg' is not a member of {rlhf / 'images.zip'}",
    )


# -- 10. truncated or corrupt image ---------------------------------------------------------------


def test_truncated_jpeg_file(jsonl: Path) -> None:
    n, rec = first_line(jsonl / "train.jsonl", is_jpeg)
    path = jsonl / "images" / rec["image"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        n,
        "image",
        "truncated-image",
        "JPEG data is truncated (no end-of-image marker)",
    )


def test_truncated_png_in_parquet(hub: Path) -> None:
    def edit(cols: dict[str, list]) -> None:
        k = next(i for i, im in enumerate(cols["image"]) if im["bytes"][:4] == b"\x89PNG")
        cols["image"][k]["bytes"] = cols["image"][k]["bytes"][:-30]
        cols["question"][k] = "TRUNCATED " + cols["question"][k]

    edit_parquet(hub / TRAIN_SHARD_0, edit)
    out = validate(hub)
    [line] = out.quarantine
    assert line["record"]["question"].startswith("TRUNCATED ")
    assert_one_bad(
        out,
        TRAIN_SHARD_0,
        line["row"],
        "image",
        "truncated-image",
        "PNG data is truncated (no IEND chunk)",
    )


def test_corrupt_image_header(hub: Path) -> None:
    file = "test/harm-00000-of-00001.parquet"
    edit_parquet(hub / file, lambda c: c["image"][9].update(bytes=b"\xff\xd8\xff" + b"junk" * 40))
    out = validate(hub)
    assert_one_bad(
        out,
        file,
        10,
        "image",
        "corrupt-image",
        "JPEG header cannot be read: PIL cannot identify the image",
    )
    # the quarantined record keeps its image, base64-encoded
    image = out.quarantine[0]["record"]["image"]
    assert base64.b64decode(image["bytes"]) == b"\xff\xd8\xff" + b"junk" * 40


def test_not_an_image_at_all(hub: Path) -> None:
    file = "test/help-00000-of-00001.parquet"
    edit_parquet(hub / file, lambda c: c["image"][0].update(bytes=b"%PDF-1.4 not an image"))
    out = validate(hub)
    assert_one_bad(
        out,
        file,
        1,
        "image",
        "unknown-image-format",
        "not a known image format (first bytes 255044462d312e34)",
    )


# -- 11. zero-byte image --------------------------------------------------------------------------


def test_zero_byte_image_file(jsonl: Path) -> None:
    _, rec = first_line(jsonl / "test.jsonl", lambda r: r["id"] == "help/000003")
    (jsonl / "images" / rec["image"]).write_bytes(b"")
    out = validate(jsonl)
    n, _ = first_line(jsonl / "test.jsonl", lambda r: r["id"] == "help/000003")
    assert_one_bad(out, "test.jsonl", n, "image", "empty-image", "the image is empty (0 bytes)")


def test_zero_byte_embedded_image(hub: Path) -> None:
    edit_parquet(hub / TRAIN_SHARD_0, lambda c: c["image"][0].update(bytes=b""))
    out = validate(hub)
    assert_one_bad(out, TRAIN_SHARD_0, 1, "image", "empty-image", "the image is empty (0 bytes)")


# -- 12. decompression bomb -----------------------------------------------------------------------


def test_decompression_bomb_over_our_limit(jsonl: Path) -> None:
    n, rec = first_line(jsonl / "validation.jsonl", lambda r: r["image"].endswith(".png"))
    bomb = png_bomb(9000, 9000)  # 81 Mpx in ~10 kB: over our 64 Mpx, under PIL's own limit
    assert len(bomb) < 50_000
    (jsonl / "images" / rec["image"]).write_bytes(bomb)
    out = validate(jsonl)
    assert_one_bad(
        out,
        "validation.jsonl",
        n,
        "image",
        "decompression-bomb",
        "9000x9000 = 81000000 pixels exceeds the limit of 64000000",
    )


def test_decompression_bomb_over_pil_limit(hub: Path) -> None:
    bomb = png_bomb(20000, 20000)  # 400 Mpx: PIL refuses to even open it
    edit_parquet(hub / TRAIN_SHARD_0, lambda c: c["image"][2].update(bytes=bomb))
    out = validate(hub, options=None)
    problem = assert_one_bad(out, TRAIN_SHARD_0, 3, "image", "decompression-bomb")
    assert "400000000 pixels" in problem.message


def test_bomb_is_refused_before_decoding_in_deep_mode(jsonl: Path) -> None:
    from spa_vl.validate import ValidationOptions

    n, rec = first_line(jsonl / "test.jsonl", lambda r: r["image"].endswith(".png"))
    (jsonl / "images" / rec["image"]).write_bytes(png_bomb(9000, 9000))
    out = validate(jsonl, options=ValidationOptions(deep=True))
    assert_one_bad(out, "test.jsonl", n, "image", "decompression-bomb")


# -- 13. '..' or absolute image path --------------------------------------------------------------


@pytest.mark.parametrize("image", ["../outside.jpg", "images/../../outside.jpg"])
def test_dotdot_image_path(jsonl: Path, image: str) -> None:
    good = next((jsonl / "images").rglob("*.jpg")).read_bytes()
    (jsonl.parent / "outside.jpg").write_bytes(good)  # the target exists: it must not be read
    edit_line(jsonl / "train.jsonl", 2, lambda r: r.update(image=image))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        2,
        "image",
        "bad-image-ref",
        f"{image!r} must be a relative path inside the image root (not empty, no '..', not absolute, no NUL)",
    )
    assert out.find("image", "path-escape").message == (f"image path {image!r} escapes the image root")


def test_absolute_image_path(jsonl: Path) -> None:
    target = next((jsonl / "images").rglob("*.jpg")).resolve()
    edit_line(jsonl / "train.jsonl", 2, lambda r: r.update(image=str(target)))
    out = validate(jsonl)
    assert_one_bad(out, "train.jsonl", 2, "image", "bad-image-ref")
    assert out.find("image", "path-escape").message == f"image path {str(target)!r} is absolute"


def test_symlink_leaving_the_image_root(jsonl: Path) -> None:
    secret = jsonl.parent / "secret.jpg"
    secret.write_bytes(next((jsonl / "images").rglob("*.jpg")).read_bytes())
    os.symlink(secret, jsonl / "images" / "link.jpg")
    edit_line(jsonl / "train.jsonl", 4, lambda r: r.update(image="link.jpg"))
    out = validate(jsonl)
    problem = assert_one_bad(out, "train.jsonl", 4, "image", "path-escape")
    assert problem.message.startswith("image path 'link.jpg' resolves outside ")


# -- 14. zip member escaping its root -------------------------------------------------------------


@pytest.mark.parametrize("member", ["../evil.jpg", "/etc/evil.jpg", "a/../../evil.jpg"])
def test_zip_member_escaping_its_root(rlhf: Path, member: str) -> None:
    with zipfile.ZipFile(rlhf / "images.zip") as zf:
        good = zf.read(zf.infolist()[0])
    with zipfile.ZipFile(rlhf / "images.zip", "a") as zf:
        zf.writestr(member, good)  # the member exists under that very name
    items = json.loads((rlhf / "train.json").read_text(encoding="utf-8"))
    items[5]["image"] = member
    (rlhf / "train.json").write_text(json.dumps(items), encoding="utf-8")
    out = validate(rlhf)
    assert_one_bad(out, "train.json", 6, "image", "bad-image-ref")
    assert out.find("image", "path-escape").code == "path-escape"
    assert not (rlhf.parent / "evil.jpg").exists()


# -- 15. duplicate ids ----------------------------------------------------------------------------


def test_duplicate_ids(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 5, lambda r: r.update(id="train/000003"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        5,
        "id",
        "duplicate-id",
        "id 'train/000003' was already used at train.jsonl:4",
    )


def test_duplicate_ids_across_files(jsonl: Path) -> None:
    edit_line(jsonl / "validation.jsonl", 1, lambda r: r.update(id="train/000000"))
    out = validate(jsonl)
    # files are read in name order: test, train, validation
    assert_one_bad(
        out,
        "validation.jsonl",
        1,
        "id",
        "duplicate-id",
        "id 'train/000000' was already used at train.jsonl:1",
    )


def test_duplicate_rlhf_ids(rlhf: Path) -> None:
    items = json.loads((rlhf / "help.json").read_text(encoding="utf-8"))
    items[4]["id"] = 1
    (rlhf / "help.json").write_text(json.dumps(items), encoding="utf-8")
    out = validate(rlhf)
    assert_one_bad(
        out,
        "help.json",
        5,
        "id",
        "duplicate-id",
        "id 'help/000001' was already used at help.json:2",
    )


# -- 16. parquet missing a column -----------------------------------------------------------------


def test_parquet_missing_a_column(hub: Path) -> None:
    edit_parquet(hub / TRAIN_SHARD_0, lambda c: c.pop("chosen"))
    out = validate(hub)
    # the whole shard (67 rows) is quarantined; every other row is accepted
    assert (out.report.read, out.report.accepted, out.report.quarantined) == (TOTAL, 680, 67)
    assert {q["file"] for q in out.quarantine} == {TRAIN_SHARD_0}
    assert [q["row"] for q in out.quarantine] == list(range(1, 68))
    problem = out.find("chosen", "missing-column")
    assert str(problem) == f"{TRAIN_SHARD_0}:1 > chosen: column 'chosen' is missing from the file"


def test_parquet_missing_image_name_loses_labels(hub: Path) -> None:
    file = "data/train-00003-of-00008.parquet"
    edit_parquet(hub / file, lambda c: c.pop("image_name"))
    out = validate(hub)
    assert out.report.quarantined == 67
    line = out.quarantine[0]
    assert (line["file"], line["row"]) == (file, 1)
    assert line["record"]["class3"] is None
    assert out.find("image_name", "missing-column").message == (
        "column 'image_name' is missing from the file"
    )


# -- 17. parquet with unexpected columns ----------------------------------------------------------


def test_parquet_with_unexpected_column(hub: Path) -> None:
    file = "test/help-00000-of-00001.parquet"
    edit_parquet(hub / file, lambda c: c.update(chosen=["an answer"] * 53))
    out = validate(hub)
    assert (out.report.read, out.report.accepted, out.report.quarantined) == (TOTAL, 694, 53)
    assert {q["file"] for q in out.quarantine} == {file}
    problem = out.find("chosen", "unexpected-column")
    assert str(problem) == (
        f"{file}:1 > chosen: unexpected column 'chosen' (expected image, question, class1, class2, class3)"
    )


def test_unreadable_parquet_file(hub: Path) -> None:
    (hub / "data/train-00001-of-00008.parquet").write_bytes(b"PAR1 this is not parquet")
    out = validate(hub)
    # the file counts as one unreadable record; the other files are read in full
    assert out.report.read == TOTAL - 67 + 1
    assert out.report.quarantined == 1
    problem = out.find("<file>", "unreadable-file")
    assert (problem.file, problem.row) == ("data/train-00001-of-00008.parquet", 0)
    assert problem.message.startswith("not a readable parquet file: ")


# -- 18. a 1 MB question --------------------------------------------------------------------------


def test_one_megabyte_question(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 20, lambda r: r.update(question="why? " * 209_716))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        20,
        "question",
        "too-long",
        "is 1,048,580 characters, over the limit of 16,384",
    )


# -- 19. NUL bytes --------------------------------------------------------------------------------


def test_nul_byte_in_text(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 9, lambda r: r.update(rejected="Sure.\u0000Here it is."))
    out = validate(jsonl)
    assert_one_bad(out, "train.jsonl", 9, "rejected", "nul-byte", "must not contain NUL bytes")


def test_raw_nul_byte_in_a_json_line(jsonl: Path) -> None:
    edit_line(
        jsonl / "train.jsonl",
        9,
        lambda r: json.dumps(r).replace("Sure.", "Sure.\x00").encode("utf-8"),
    )
    out = validate(jsonl)
    problem = assert_one_bad(out, "train.jsonl", 9, "<record>", "malformed-json")
    assert problem.message.startswith("malformed JSON: Invalid control character at column ")


def test_nul_byte_in_id_and_image_path(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 9, lambda r: r.update(id="train/\u0000"))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        9,
        "id",
        "bad-id",
        "'train/\\x00' must not contain whitespace or NUL bytes",
    )


# -- 20. a test row with answers ------------------------------------------------------------------


def test_test_row_with_answers(jsonl: Path) -> None:
    edit_line(jsonl / "test.jsonl", 60, lambda r: r.update(chosen="I refuse.", rejected="OK."))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "test.jsonl",
        60,
        "chosen",
        "answer-on-test",
        "must be absent on test rows, got 'I refuse.'",
    )
    assert out.find("rejected", "answer-on-test").message == ("must be absent on test rows, got 'OK.'")


def test_rlhf_harm_item_with_answers(rlhf: Path) -> None:
    items = json.loads((rlhf / "harm.json").read_text(encoding="utf-8"))
    items[0]["chosen"] = "I refuse."
    (rlhf / "harm.json").write_text(json.dumps(items), encoding="utf-8")
    out = validate(rlhf)
    assert_one_bad(
        out, "harm.json", 1, "chosen", "answer-on-test", "must be absent on test rows, got 'I refuse.'"
    )


# -- more kinds -----------------------------------------------------------------------------------


def test_unexpected_field_in_jsonl(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 3, lambda r: r.update(source="web"))
    out = validate(jsonl)
    assert_one_bad(out, "train.jsonl", 3, "source", "unexpected-field", "unexpected field 'source'")


def test_bad_base64_image(jsonl: Path) -> None:
    edit_line(jsonl / "train.jsonl", 3, lambda r: r.update(image={"bytes": "!!!", "path": None}))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        3,
        "image.bytes",
        "bad-base64",
        "embedded image is not valid base64",
    )


def test_partial_labels(jsonl: Path) -> None:
    edit_line(jsonl / "validation.jsonl", 3, lambda r: r.update(class2=None))
    out = validate(jsonl)
    assert_one_bad(
        out,
        "validation.jsonl",
        3,
        "class2",
        "incomplete-labels",
        "some class labels are set, this one is not",
    )


def test_rlhf_item_without_id(rlhf: Path) -> None:
    items = json.loads((rlhf / "validation.json").read_text(encoding="utf-8"))
    del items[1]["id"]
    (rlhf / "validation.json").write_text(json.dumps(items), encoding="utf-8")
    out = validate(rlhf)
    assert_one_bad(out, "validation.json", 2, "id", "missing-field", "'id' is missing")


def test_several_faults_in_one_record_are_all_reported(jsonl: Path) -> None:
    def edit(r: dict) -> None:
        r.update(question=" ", chosen=7, class3="scams", extra=1)
        r["image"] = "../x.jpg"

    edit_line(jsonl / "train.jsonl", 11, edit)
    out = validate(jsonl)
    assert (out.report.read, out.report.accepted, out.report.quarantined) == (TOTAL, 746, 1)
    got = {(p.field, p.code) for p in out.problems}
    assert got >= {
        ("extra", "unexpected-field"),
        ("question", "empty-text"),
        ("chosen", "wrong-type"),
        ("class3", "unknown-label"),
        ("image", "bad-image-ref"),
        ("image", "path-escape"),
    }
    assert all((p.file, p.row) == ("train.jsonl", 11) for p in out.problems)


def test_many_bad_records_counts_reconcile(jsonl: Path) -> None:
    for n in (1, 2, 3, 50, 100):
        edit_line(jsonl / "train.jsonl", n, lambda r: r.update(question=""))
    edit_line(jsonl / "test.jsonl", 1, lambda r: b"{")
    out = validate(jsonl)
    assert (out.report.read, out.report.accepted, out.report.quarantined) == (TOTAL, 741, 6)
    assert out.report.splits["train"].quarantined == 5
    assert out.report.splits["unknown"].quarantined == 1  # the unparsable line has no split
    assert out.report.problems["empty-text"] == 5
    assert out.report.problems["malformed-json"] == 1


def test_lone_surrogate_in_text(jsonl: Path) -> None:
    # Valid JSON, valid for the schema, but no UTF-8 writer (parquet) would accept it.
    edit_line(
        jsonl / "train.jsonl",
        6,
        lambda r: json.dumps(r).replace('"question": "', '"question": "\\ud800', 1).encode(),
    )
    out = validate(jsonl)
    assert_one_bad(
        out,
        "train.jsonl",
        6,
        "question",
        "bad-unicode",
        "holds a lone surrogate (U+D800..U+DFFF): not valid text",
    )
    # the quarantine line is still written, with the surrogate as its JSON escape
    assert out.quarantine[0]["record"]["question"].startswith("\ud800")


def test_zip_bomb_member_is_not_inflated(rlhf: Path, monkeypatch) -> None:
    # A member that inflates past the size limit is refused from its header, unread.
    with zipfile.ZipFile(rlhf / "images.zip", "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.jpg", b"\xff\xd8\xff" + b"\x00" * (8 << 20))  # 8 MiB -> ~8 kB
    assert (rlhf / "images.zip").stat().st_size < 2_000_000
    monkeypatch.setattr("spa_vl.sources.images.MAX_IMAGE_BYTES", 4 << 20)
    items = json.loads((rlhf / "validation.json").read_text(encoding="utf-8"))
    items[0]["image"] = "bomb.jpg"
    (rlhf / "validation.json").write_text(json.dumps(items), encoding="utf-8")
    out = validate(rlhf)
    assert_one_bad(
        out,
        "validation.json",
        1,
        "image",
        "image-too-large",
        "image 'bomb.jpg' is 8,388,611 bytes, over the limit of 4,194,304",
    )


def test_huge_image_file_is_not_read(jsonl: Path, monkeypatch) -> None:
    monkeypatch.setattr("spa_vl.sources.images.MAX_IMAGE_BYTES", 1000)
    big = next(p for p in sorted((jsonl / "images").rglob("*.jpg")) if p.stat().st_size > 1000)
    rel = big.relative_to(jsonl / "images").as_posix()
    n, _ = first_line(jsonl / "train.jsonl", lambda r: r["image"] == rel)
    out = validate(jsonl)
    # every image over 1000 bytes is refused; this one is among them
    assert any(
        (q["file"], q["row"]) == ("train.jsonl", n) and q["reasons"][0]["code"] == "image-too-large"
        for q in out.quarantine
    )
