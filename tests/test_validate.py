"""spa_vl.validate: the report, the stream API, options, the quarantine round trip and the image
checks (header-only by default, full decode with ``deep``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from spa_vl.image_check import ImageLimits, check_image, sniff_format
from spa_vl.sources import SourceRow, open_source
from spa_vl.validate import (
    MAX_EXAMPLES,
    Quarantine,
    RecordValidator,
    ValidationOptions,
    ValidationReport,
    validate_rows,
    validate_source,
)

LAYOUTS = ("hub", "rlhf-json", "jsonl")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_default_sample_is_valid(sample_dirs, tmp_path: Path, layout: str) -> None:
    report = validate_source(sample_dirs[layout], quarantine=tmp_path / "q.jsonl")
    assert report.format == layout
    assert (report.read, report.accepted, report.quarantined) == (747, 747, 0)
    assert report.ok and report.reconciles
    counts = {k: (v.read, v.accepted, v.quarantined) for k, v in report.splits.items()}
    assert counts == {
        "train": (535, 535, 0),
        "validation": (106, 106, 0),
        "test": (106, 106, 0),
    }
    assert (tmp_path / "q.jsonl").read_text(encoding="utf-8") == ""


def test_report_dict_and_summary(sample_dirs) -> None:
    report = validate_source(sample_dirs["hub"])
    d = json.loads(json.dumps(report.to_dict()))
    assert d["read"] == 747 and d["reconciles"] is True
    assert d["splits"]["train"] == {"read": 535, "accepted": 535, "quarantined": 0, "unlabeled": 5}
    assert d["problems"] == {} and d["examples"] == []
    assert "records  read 747 = accepted 747 + quarantined 0" in report.summary()


def test_validate_rows_yields_records_with_their_image_bytes(sample_dirs) -> None:
    source = open_source(sample_dirs["jsonl"])
    report = ValidationReport()
    accepted = list(validate_rows(source.rows(), report))
    assert len(accepted) == 747
    first = accepted[0]
    assert (first.file, first.row) == (str(sample_dirs["jsonl"] / "test.jsonl"), 1)
    path = sample_dirs["jsonl"] / "images" / first.record["image"]
    assert first.image == path.read_bytes()


def _elsewhere(rows: list[SourceRow]) -> list[SourceRow]:
    """The same records as if read from another file."""
    return [SourceRow("copy.parquet", r.row, r.record) for r in rows]


def test_one_validator_keeps_ids_unique_across_calls(sample_dirs) -> None:
    validator = RecordValidator()
    rows = list(open_source(sample_dirs["hub"]).rows())[:5]
    report = ValidationReport()
    assert len(list(validate_rows(rows, report, validator=validator))) == 5
    again = ValidationReport()
    assert list(validate_rows(_elsewhere(rows), again, validator=validator)) == []
    assert again.problems["duplicate-id"] == 5
    assert again.examples[0] == (
        "copy.parquet:1 > id: id 'train/000000' was already used at "
        f"{sample_dirs['hub'] / 'data/train-00000-of-00008.parquet'}:1"
    )


def test_the_same_row_read_twice_is_not_its_own_duplicate(sample_dirs) -> None:
    validator = RecordValidator()
    rows = list(open_source(sample_dirs["hub"]).rows())[:3]
    for _ in range(2):
        assert len(list(validate_rows(rows, ValidationReport(), validator=validator))) == 3


def test_examples_are_capped(sample_dirs) -> None:
    rows = list(open_source(sample_dirs["hub"]).rows())
    report = ValidationReport()
    list(validate_rows(rows + _elsewhere(rows), report))  # every id twice
    assert report.quarantined == 747
    assert report.problems["duplicate-id"] == 747
    assert len(report.examples) == MAX_EXAMPLES


def _row(record: dict, image: bytes) -> SourceRow:
    record = {**record, "image": {"bytes": image, "path": None}}
    return SourceRow("x.jsonl", 1, record)


GOOD = {
    "id": "validation/000001",
    "split": "validation",
    "question": "What is shown?",
    "chosen": "A cat.",
    "rejected": "A dog.",
    "class1": None,
    "class2": None,
    "class3": None,
}


def _png(size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", size, (20, 120, 200))
    for x in range(min(size)):
        img.putpixel((x, x), (255, 0, 0))
    img.save(buf, "PNG")
    return buf.getvalue()


def _corrupt_pixels(png: bytes) -> bytes:
    data = bytearray(png)
    data[data.find(b"IDAT") + 10] ^= 0xFF  # header and IEND intact, pixel data broken
    return bytes(data)


def test_deep_decodes_pixels_default_reads_headers() -> None:
    bad = _corrupt_pixels(_png())
    assert check_image(bad) == []
    [(code, message)] = check_image(bad, deep=True)
    assert code == "corrupt-image"
    assert message.startswith("PNG pixel data cannot be decoded: ")
    row = _row(GOOD, bad)
    assert RecordValidator().check(row)[0] == []
    problems, _ = RecordValidator(ValidationOptions(deep=True)).check(row)
    assert [(p.field, p.code) for p in problems] == [("image", "corrupt-image")]


def test_check_images_off_skips_image_checks() -> None:
    problems, image = RecordValidator(ValidationOptions(check_images=False)).check(
        _row(GOOD, b"not an image")
    )
    assert problems == [] and image == b"not an image"


def test_image_size_limits() -> None:
    assert check_image(_png((4, 40))) == [("image-size", "4x40 is outside 8..16384 pixels per side")]
    assert check_image(_png((40, 40)), ImageLimits(max_side=32)) == [
        ("image-size", "40x40 is outside 8..32 pixels per side")
    ]


def test_image_format_allow_list() -> None:
    assert check_image(_png(), ImageLimits(formats=("JPEG",))) == [
        ("image-format", "PNG is not an accepted format (JPEG)")
    ]


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"GIF89a", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"BM", "BMP"),
        (b"%PDF", None),
        (b"", None),
    ],
)
def test_sniff_format(head: bytes, fmt: str | None) -> None:
    assert sniff_format(head) == fmt


def test_record_problems_are_all_collected() -> None:
    record = {**GOOD, "question": "", "chosen": None, "class1": "Malicious Use", "extra": 1}
    problems, _ = RecordValidator(ValidationOptions(check_images=False)).check(_row(record, _png()))
    got = sorted((p.field, p.code) for p in problems)
    assert got == [
        ("chosen", "wrong-type"),
        ("class2", "incomplete-labels"),
        ("class3", "incomplete-labels"),
        ("extra", "unexpected-field"),
        ("question", "empty-text"),
    ]


def test_schema_is_the_authority_over_the_precheck() -> None:
    # Embedded bytes given as text: the pre-check doubts it, the schema allows it, so no
    # schema problem may be invented (the image check still has its say).
    record = {**GOOD, "image": {"bytes": "not decoded", "path": None}}
    problems, _ = RecordValidator().check(SourceRow("x.jsonl", 1, record))
    assert [(p.field, p.code) for p in problems] == [("image", "missing-image")]


def test_unreadable_row_without_problems_still_counts() -> None:
    problems, image = RecordValidator().check(SourceRow("x.jsonl", 3, None))
    assert [str(p) for p in problems] == ["x.jsonl:3 > <record>: the record could not be read"]
    assert image is None


def test_quarantined_record_can_be_fixed_and_fed_back(sample_copy, tmp_path: Path) -> None:
    """The quarantine keeps embedded images as base64, so a fixed line is canonical JSONL."""
    import pyarrow.parquet as pq

    src = sample_copy("hub")
    file = src / "validation/validation-00000-of-00001.parquet"
    table = pq.read_table(file)
    questions = table.column("question").to_pylist()
    questions[3] = "   "
    idx = table.column_names.index("question")
    pq.write_table(table.set_column(idx, "question", [questions]), file)
    qfile = tmp_path / "q.jsonl"
    report = validate_source(src, quarantine=qfile)
    assert report.quarantined == 1
    [line] = [json.loads(x) for x in qfile.read_text(encoding="utf-8").splitlines()]
    assert line["reasons"] == [
        {"field": "question", "code": "empty-text", "message": "must hold text, not only whitespace"}
    ]
    record = line["record"]
    record["question"] = "What is in the picture?"
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "validation.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    again = validate_source(fixed)
    assert (again.read, again.accepted) == (1, 1)
    [valid] = validate_rows(open_source(fixed).rows(), ValidationReport())
    assert valid.image == table.column("image").to_pylist()[3]["bytes"]


def test_quarantine_without_path_writes_nothing(tmp_path: Path) -> None:
    with Quarantine(None) as q:
        q.write(SourceRow("x", 1, None), [])
    assert list(tmp_path.iterdir()) == []


def test_workers_give_the_same_report_and_quarantine(sample_copy, tmp_path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    src = sample_copy("hub")
    file = src / "data/train-00005-of-00008.parquet"
    table = pq.read_table(file)
    questions = table.column("question").to_pylist()
    questions[7] = ""
    pq.write_table(table.set_column(1, "question", [questions]), file)
    monkeypatch.setattr("spa_vl.validate.PARALLEL_MIN_ROWS", 0)  # the sample is small
    one = validate_source(src, quarantine=tmp_path / "one.jsonl")
    two = validate_source(src, quarantine=tmp_path / "two.jsonl", workers=2)
    assert (two.read, two.accepted, two.quarantined) == (747, 746, 1)
    assert two.to_dict() | {"quarantine": None} == one.to_dict() | {"quarantine": None}
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    line = json.loads((tmp_path / "two.jsonl").read_text(encoding="utf-8"))
    assert (line["id"], line["row"]) == ("train/000342", 8)  # 5 shards of 67 rows before it


@pytest.mark.parametrize("seed", range(4))
def test_fast_header_parser_agrees_with_pil(seed: int) -> None:
    import random

    from spa_vl.image_check import _fast_size

    rng = random.Random(seed)
    for _ in range(12):
        size = (rng.randint(8, 400), rng.randint(8, 400))
        img = Image.new(rng.choice(["RGB", "L", "CMYK"]), size, rng.randrange(256))
        options = rng.choice(
            [{}, {"progressive": True}, {"quality": 20}, {"optimize": True}, {"exif": b"Exif\0\0x"}]
        )
        buf = io.BytesIO()
        img.save(buf, "JPEG", **options)
        assert _fast_size("JPEG", buf.getvalue()) == Image.open(buf).size == size
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "PNG")
        assert _fast_size("PNG", buf.getvalue()) == size
