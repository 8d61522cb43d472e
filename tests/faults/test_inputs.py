"""Fault injection (issue 12, items 3-4): inputs are complete or the run says so, and every byte
a reader will later decode is checked.

One test per fault kind. Each asserts the exit code of ``spa-vl validate``, that the file (and
the row and field, for a record) is named, that no traceback is printed, and that the counts
reconcile: read = accepted + quarantined, one quarantine line per quarantined record.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spa_vl.errors import DataError
from spa_vl.sources import open_source
from spa_vl.validate import ValidationOptions, validate_source

TOTAL = 747  # rows of the default sample
SHARD = "data/train-{:05d}-of-00008.parquet"  # 67 rows each (the last: 66)
POSITIONAL = re.compile(r"^(train|validation|harm|help)/\d{6}$")


def validate(cli, src: Path, tmp_path: Path, *extra: str):
    """``spa-vl validate SRC`` with a report and a quarantine outside the source: the run,
    the report (None when the run stopped before one) and the quarantine lines."""
    q, r = tmp_path / "q.jsonl", tmp_path / "report.json"
    run = cli("validate", src, "--quarantine", q, "--report", r, *extra)
    assert "Traceback" not in run.err, run.err
    if not r.exists():
        return run, None, []
    report = json.loads(r.read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in q.read_text(encoding="utf-8").splitlines()] if q.exists() else []
    assert report["read"] == report["accepted"] + report["quarantined"]
    assert report["reconciles"]
    assert len(lines) == report["quarantined"]
    return run, report, lines


def reasons(lines: list[dict]) -> list[tuple[str, int, str, str]]:
    """(file, row, field, code) of every quarantined problem."""
    return [(q["file"], q["row"], r["field"], r["code"]) for q in lines for r in q["reasons"]]


def ids_by_content(src: Path, **kw) -> dict[str, tuple]:
    """id -> (question, image_name) of every train row the reader yields."""
    return {
        r.record["id"]: (r.record["question"], r.record["image_name"])
        for r in open_source(src, **kw).rows(("train",))
        if r.record is not None
    }


def rewrite_column(file: Path, column: str, values: pa.Array) -> None:
    table = pq.read_table(file)
    i = table.schema.get_field_index(column)
    table = table.set_column(i, table.schema.field(i), values)
    pq.write_table(table, file, row_group_size=100, compression="snappy")


def bad_utf8_strings(values: list[str | None], row: int, bad: bytes) -> pa.Array:
    """A string array whose value at ``row`` is ``bad`` (not UTF-8): built as binary, then
    relabelled as string, which pyarrow (and so any parquet writer using it) does not check."""
    raw = [None if v is None else v.encode("utf-8") for v in values]
    raw[row] = bad
    return pa.array(raw, pa.binary()).view(pa.string())


# -- item 3: complete shard sets ------------------------------------------------------------------


def test_missing_train_shard(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    (hub / SHARD.format(2)).unlink()
    run, report, _ = validate(cli, hub, tmp_path)
    run.assert_one_line_error(1, "data/train-00002-of-00008.parquet", "missing: shard 2 of 8")
    assert report is None  # refused before any row is read


def test_shard_index_past_the_count(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    (hub / SHARD.format(7)).rename(hub / "data/train-00008-of-00008.parquet")
    run, _, _ = validate(cli, hub, tmp_path)
    run.assert_one_line_error(1, "data/train-00008-of-00008.parquet: shard index 8 is at or past the count 8")
    assert "data/train-00007-of-00008.parquet: missing" in run.err


def test_two_counts_in_one_set(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    (hub / SHARD.format(3)).rename(hub / "data/train-00003-of-00009.parquet")
    run, _, _ = validate(cli, hub, tmp_path)
    run.assert_one_line_error(1, "2 different shard counts", "data/train-00003-of-00009.parquet")


def test_stray_file_in_a_layout_folder(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    (hub / "data/train.parquet").write_bytes((hub / SHARD.format(0)).read_bytes())
    (hub / "data/.DS_Store").write_bytes(b"\0")  # hidden: not data, listed as not read
    run, _, _ = validate(cli, hub, tmp_path)
    run.assert_one_line_error(1, "data/train.parquet: matches no file name of the Hub layout")
    assert ".DS_Store" not in run.err


def test_allow_partial_reads_what_is_there_and_says_so(sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    (hub / SHARD.format(2)).unlink()
    (hub / "test/notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataError):
        validate_source(hub)
    report = validate_source(hub, options=ValidationOptions(allow_partial=True))
    assert (report.read, report.accepted, report.quarantined) == (TOTAL - 67, TOTAL - 67, 0)
    files = [p["file"] for p in report.to_dict()["partial"]]
    assert any(f.endswith("data/train-00002-of-00008.parquet") for f in files)
    assert any(f.endswith("test/notes.txt") for f in files)
    assert "partial source (allowed)" in report.summary()
    assert "train-00002-of-00008.parquet: missing: shard 2 of 8" in report.summary()


def test_ids_after_a_missing_shard_do_not_shift(sample_dirs, sample_copy) -> None:
    full = ids_by_content(sample_dirs["hub"])
    hub = sample_copy("hub")
    (hub / SHARD.format(2)).unlink()
    partial = ids_by_content(hub, allow_partial=True)
    assert len(partial) == len(full) - 67
    for rid, content in partial.items():
        if POSITIONAL.match(rid):
            assert full[rid] == content, rid  # a positional id is the row's id in the full set
    # rows of later shards are named by their file, not given an earlier shard's positions
    assert "train/train-00003-of-00008/000000" in partial
    assert partial["train/train-00003-of-00008/000000"] == full["train/000201"]
    assert "train/000134" not in partial  # shard 2's first id: absent, never reused


def test_corrupt_parquet_page_is_counted_not_raised(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    file = hub / SHARD.format(0)
    # 2,144 rows (past one column batch of 2,048) in row groups of 100; then bytes flipped in
    # the middle of the question chunk of the last row group: the rows before it are read.
    table = pq.read_table(file)
    pq.write_table(pa.concat_tables([table] * 32), file, row_group_size=100, compression="snappy")
    meta = pq.ParquetFile(file).metadata
    rg = meta.row_group(meta.num_row_groups - 1)
    chunk = rg.column(pq.ParquetFile(file).schema_arrow.get_field_index("question"))
    data = bytearray(file.read_bytes())
    middle = chunk.data_page_offset + chunk.total_compressed_size // 2
    data[middle : middle + 64] = b"\xff" * 64
    file.write_bytes(bytes(data))

    run, report, lines = validate(cli, hub, tmp_path)
    assert run.code == 1
    [line] = [q for q in lines if q["reasons"][0]["code"] == "unreadable-rows"]
    name = "data/train-00000-of-00008.parquet"
    assert line["file"].endswith(name) and line["row"] == 2049
    assert line["reasons"][0]["message"].startswith("rows 2,049 to 2,144 (as the footer counts them)")
    assert report["read"] == TOTAL - 67 + 2048 + 1
    assert any("counts as one read and quarantined record" in n for n in report["notes"])
    assert name in run.err and "unreadable-rows" in run.err
    # the column-batch path and the row path agree
    fast = validate_source(hub, quarantine=tmp_path / "a.jsonl").to_dict()
    rows = validate_source(hub, quarantine=tmp_path / "b.jsonl", fast=False).to_dict()
    fast.pop("quarantine"), rows.pop("quarantine")
    assert fast == rows
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_garbage_parquet_footer(cli, sample_dirs, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    file = hub / SHARD.format(1)
    data = file.read_bytes()
    file.write_bytes(data[:-40] + b"\x13" * 36 + b"PAR1")  # the footer overwritten
    run, report, lines = validate(cli, hub, tmp_path)
    assert run.code == 1
    assert report["read"] == TOTAL - 67 + 1 and report["quarantined"] == 1
    assert reasons(lines)[0][1:] == (0, "<file>", "unreadable-file")
    assert "data/train-00001-of-00008.parquet:0 > <file>: not a readable parquet file" in run.err
    # the footer held the row count: the shards after it cannot have positional ids
    full = ids_by_content(sample_dirs["hub"])
    after = ids_by_content(hub)
    assert all(full[rid] == c for rid, c in after.items() if POSITIONAL.match(rid))
    assert "train/train-00002-of-00008/000000" in after


# -- item 4: every byte checked -------------------------------------------------------------------


def test_invalid_utf8_in_image_path(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    file = hub / "validation/validation-00000-of-00001.parquet"
    image = pq.read_table(file).column("image").combine_chunks()
    paths = bad_utf8_strings(image.field("path").to_pylist(), 4, b"pic\xff.jpg")
    rewrite_column(
        file, "image", pa.StructArray.from_arrays([image.field("bytes"), paths], fields=list(image.type))
    )
    run, report, lines = validate(cli, hub, tmp_path)
    assert run.code == 1
    assert report["quarantined"] == 1
    [(f, row, field, code)] = reasons(lines)
    assert f.endswith("validation-00000-of-00001.parquet") and (row, field, code) == (
        5,
        "image.path",
        "not-utf8",
    )
    assert (
        "validation-00000-of-00001.parquet:5 > image.path: is not valid UTF-8 (byte 0xff at offset 3)"
        in run.err
    )
    fast = validate_source(hub).to_dict()
    assert fast == validate_source(hub, fast=False).to_dict()


def test_invalid_utf8_in_a_parquet_question(cli, sample_copy, tmp_path: Path) -> None:
    hub = sample_copy("hub")
    file = hub / "test/harm-00000-of-00001.parquet"
    questions = pq.read_table(file).column("question").to_pylist()
    rewrite_column(file, "question", bad_utf8_strings(questions, 0, b"caf\xe9?"))
    run, report, lines = validate(cli, hub, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1
    assert reasons(lines)[0][1:] == (1, "question", "not-utf8")
    assert lines[0]["record"]["question"] == "caf\\xe9?"  # kept, escaped, in the quarantine
    assert validate_source(hub).to_dict() == validate_source(hub, fast=False).to_dict()


@pytest.fixture(scope="module")
def built_release(sample_dirs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spa_vl.release.build import build_release

    return build_release(sample_dirs["jsonl"], tmp_path_factory.mktemp("faults") / "rel").out


@pytest.fixture
def release(built_release: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built_release, tmp_path / "release"))


def test_stray_file_in_a_release(cli, release: Path, tmp_path: Path) -> None:
    (release / "data/misinformation/train.parquet.bak").write_bytes(b"old")
    run, _, _ = validate(cli, release, tmp_path)
    run.assert_one_line_error(1, "data/misinformation/train.parquet.bak: matches no file name of a release")


def test_invalid_utf8_in_a_release_image_path(release: Path) -> None:
    file = sorted(release.glob("data/*/validation-*.parquet"))[0]
    table = pq.read_table(file)
    image = table.column("image").combine_chunks()
    paths = bad_utf8_strings(image.field("path").to_pylist(), 2, b"\xc3(.png")
    table = table.set_column(
        1, "image", pa.StructArray.from_arrays([image.field("bytes"), paths], fields=list(image.type))
    )
    pq.write_table(table, file)
    fast = validate_source(release)
    assert fast.quarantined == 1 and fast.problems == {"not-utf8": 1}
    assert fast.to_dict() == validate_source(release, fast=False).to_dict()


def test_invalid_utf8_in_a_jsonl_line(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    lines = (src / "train.jsonl").read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b'"question": "', b'"question": "\xff\xfe', 1)
    (src / "train.jsonl").write_bytes(b"\n".join(lines))
    run, report, quarantined = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1
    assert reasons(quarantined)[0][1:] == (7, "<record>", "not-utf8")
    assert "train.jsonl:7 > <record>: the line is not UTF-8 (byte 0xff" in run.err


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        (7.0, "wrong-type", "'id' must be an integer or a non-empty string, got float 7.0"),
        (float("nan"), "wrong-type", "'id' must be an integer or a non-empty string, got float nan"),
        (True, "wrong-type", "'id' must be an integer or a non-empty string, got bool True"),
        ([7], "wrong-type", "'id' must be an integer or a non-empty string, got list [7]"),
        ("", "bad-id", "'id' must not be empty"),
    ],
    ids=["float", "nan", "bool", "list", "empty-string"],
)
def test_rlhf_id_that_is_not_an_id(cli, sample_copy, tmp_path: Path, value, code, message) -> None:
    src = sample_copy("rlhf-json")
    items = json.loads((src / "help.json").read_text(encoding="utf-8"))
    items[3]["id"] = value
    (src / "help.json").write_text(json.dumps(items), encoding="utf-8")
    run, report, lines = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1
    [line] = lines
    assert line["file"].endswith("help.json") and line["row"] == 4
    assert [(r["field"], r["code"], r["message"]) for r in line["reasons"]] == [("id", code, message)]
    assert f"help.json:4 > id: {message}" in run.err


def test_rlhf_id_spelled_two_ways_is_a_duplicate(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    items = json.loads((src / "help.json").read_text(encoding="utf-8"))
    assert items[1]["id"] == 1
    items[4]["id"] = "1"  # the same id as the integer 1
    (src / "help.json").write_text(json.dumps(items), encoding="utf-8")
    run, report, lines = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1
    assert reasons(lines)[0][1:] == (5, "id", "duplicate-id")
    assert "id 'help/000001' was already used at " in run.err


def test_files_left_out_on_purpose_are_named(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    (src / "dataset_infos.json").write_text("{}", encoding="utf-8")  # names no split
    (src / "train.jsonl").write_text("{}\n", encoding="utf-8")  # another layout's file
    run, report, _ = validate(cli, src, tmp_path)
    assert run.code == 0 and report["accepted"] == TOTAL
    assert [Path(i["file"]).name for i in report["ignored"]] == ["dataset_infos.json", "train.jsonl"]
    assert "not read: " in run.out and "dataset_infos.json (its name gives no split" in run.out


def test_ids_of_a_shard_with_another_count_are_not_positional(sample_dirs, sample_copy) -> None:
    hub = sample_copy("hub")
    (hub / SHARD.format(3)).rename(hub / "data/train-00003-of-00009.parquet")
    ids = ids_by_content(hub, allow_partial=True)
    full = ids_by_content(sample_dirs["hub"])
    assert len(ids) == len(full)
    assert "train/train-00003-of-00009/000000" in ids and "train/train-00004-of-00008/000000" in ids
    assert all(full[rid] == c for rid, c in ids.items() if POSITIONAL.match(rid))
