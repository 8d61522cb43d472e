"""Fault injection (issue 12, item 5): hostile files are refused, not followed.

Special files never block a reader (a FIFO is checked with ``stat``, never opened); folders
named like data files; archives that are not archives, cut short, encrypted or compressed with
a method Python cannot read; pathological JSON (a byte-order mark, deep nesting, number
literals too long for ``int()``); files that are not UTF-8. One test per fault kind: the exit
code, the file (and row and field) named, no traceback, and the counts reconcile.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from .conftest import cli_subprocess
from .test_inputs import TOTAL, reasons, validate

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
HELP_IMAGE = "help/Representation & ToxicityHarms/Toxic/hate/2.png"  # help.json item 3's image


def run_in_child(*argv, timeout: float = 120) -> tuple[int, str]:
    """``spa-vl ARGV`` in a child process, killed after ``timeout`` s: a reader blocked on a
    FIFO fails the test instead of hanging the suite."""
    child = cli_subprocess(*argv)
    try:
        _, err = child.communicate(timeout=timeout)
    except Exception:
        child.kill()
        child.communicate()
        raise AssertionError(f"spa-vl {' '.join(map(str, argv))} blocked for {timeout} s") from None
    assert "Traceback" not in err, err
    return child.returncode, err


def patch_zip_member(
    archive: Path, member: str, *, flags: int | None = None, method: int | None = None
) -> None:
    """Set the general-purpose flags or the compression method of ``member`` in both its local
    header and its central directory entry, as a hostile or exotic archiver would write them."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
        central = zf.start_dir
    local = info.header_offset
    assert data[local : local + 4] == b"PK\x03\x04"
    at = central
    while data[at : at + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[at + 28 : at + 34])
        if data[at + 46 : at + 46 + name_len].decode("utf-8") == member:
            break
        at += 46 + name_len + extra_len + comment_len
    else:
        raise AssertionError(f"{member} not in the central directory")
    if flags is not None:
        data[local + 6 : local + 8] = struct.pack("<H", flags)
        data[at + 8 : at + 10] = struct.pack("<H", flags)
    if method is not None:
        data[local + 8 : local + 10] = struct.pack("<H", method)
        data[at + 10 : at + 12] = struct.pack("<H", method)
    archive.write_bytes(bytes(data))


def assert_one_image_problem(run, report, lines, file: str, row: int, needle: str) -> None:
    assert run.code == 1
    assert report["quarantined"] == 1 and report["accepted"] == TOTAL - 1
    [(f, r, field, code)] = reasons(lines)
    assert f.endswith(file) and (r, field, code) == (row, "image", "unreadable-image")
    assert needle in lines[0]["reasons"][0]["message"]
    assert f"{file}:{row} > image: " in run.err


# -- special files and folders --------------------------------------------------------------------


@needs_fifo
def test_fifo_named_like_a_data_file_does_not_block(sample_copy) -> None:
    src = sample_copy("jsonl")
    (src / "train.jsonl").unlink()
    os.mkfifo(src / "train.jsonl")
    code, err = run_in_child("validate", src, "--quiet")
    assert code == 1
    assert "train.jsonl: is a FIFO (named pipe), not a regular file" in err


@needs_fifo
def test_fifo_given_as_the_source_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "train.jsonl")
    code, err = run_in_child("validate", tmp_path / "train.jsonl", "--quiet")
    assert code == 1
    assert "train.jsonl: is a FIFO (named pipe), not a data file or a folder" in err


@needs_fifo
def test_fifo_in_the_image_folder_does_not_block(sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    first = json.loads((src / "validation.jsonl").read_text(encoding="utf-8").splitlines()[0])
    image = src / "images" / first["image"]
    image.unlink()
    os.mkfifo(image)
    code, err = run_in_child("validate", src, "--report", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert code == 1 and report["quarantined"] == 1 and report["reconciles"]
    assert "validation.jsonl:1 > image: image path " in err and "is not a regular file" in err


def test_folder_named_like_a_jsonl_file(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    (src / "validation.jsonl").unlink()
    (src / "validation.jsonl").mkdir()
    run, report, _ = validate(cli, src, tmp_path)
    run.assert_one_line_error(1, "validation.jsonl: is a folder, not a regular file")
    assert report is None


def test_folder_named_like_a_parquet_shard(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("hub")
    shard = src / "data/train-00004-of-00008.parquet"
    shard.unlink()
    shard.mkdir()
    run, _, _ = validate(cli, src, tmp_path)
    run.assert_one_line_error(1, "data/train-00004-of-00008.parquet: is a folder, not a regular file")


# -- archives -------------------------------------------------------------------------------------


def test_images_zip_that_is_not_a_zip(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    (src / "images.zip").write_text("these are not the images you are looking for\n", encoding="utf-8")
    run, report, _ = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == TOTAL
    assert report["problems"] == {"unreadable-archive": TOTAL}
    assert "images.zip is not a readable zip archive: File is not a zip file" in run.err


def test_truncated_images_zip(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    data = (src / "images.zip").read_bytes()
    (src / "images.zip").write_bytes(data[: len(data) // 2])
    run, report, _ = validate(cli, src, tmp_path)
    assert run.code == 1 and report["problems"] == {"unreadable-archive": TOTAL}
    assert "harm.json:1 > image: images.zip is not a readable zip archive" in run.err  # read first


def test_folder_named_images_zip(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    (src / "images.zip").unlink()
    (src / "images.zip").mkdir()
    run, report, _ = validate(cli, src, tmp_path)
    assert run.code == 1 and report["problems"] == {"unreadable-archive": TOTAL}
    assert "images.zip is not a readable zip archive" in run.err


def test_encrypted_zip_member(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    patch_zip_member(src / "images.zip", HELP_IMAGE, flags=0x1)
    run, report, lines = validate(cli, src, tmp_path)
    assert_one_image_problem(run, report, lines, "help.json", 3, "the member is encrypted")


def test_zip_member_with_an_unsupported_compression_method(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    patch_zip_member(src / "images.zip", HELP_IMAGE, method=99)
    run, report, lines = validate(cli, src, tmp_path)
    assert_one_image_problem(
        run, report, lines, "help.json", 3, "compressed with method 99, which cannot be read"
    )


# -- pathological JSON ----------------------------------------------------------------------------


def test_utf8_byte_order_mark_in_rlhf_json_is_accepted(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    (src / "harm.json").write_bytes(b"\xef\xbb\xbf" + (src / "harm.json").read_bytes())
    run, report, _ = validate(cli, src, tmp_path)
    assert run.code == 0, run.err
    assert (report["read"], report["accepted"]) == (TOTAL, TOTAL)


def test_utf8_byte_order_mark_in_jsonl_is_accepted(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    (src / "test.jsonl").write_bytes(b"\xef\xbb\xbf" + (src / "test.jsonl").read_bytes())
    run, report, _ = validate(cli, src, tmp_path)
    assert run.code == 0, run.err
    assert (report["read"], report["accepted"]) == (TOTAL, TOTAL)


def test_deeply_nested_rlhf_json(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    text = (src / "validation.json").read_text(encoding="utf-8")
    items = json.loads(text)
    deep = "[" * 100_000 + "]" * 100_000
    body = ",\n".join([json.dumps(items[0]), json.dumps(items[1]), deep, *map(json.dumps, items[2:])])
    (src / "validation.json").write_text(f"[{body}]", encoding="utf-8")
    run, report, lines = validate(cli, src, tmp_path)
    assert run.code == 1
    # the parser cannot find its way past the item: the rest of the file is one record
    assert report["splits"]["validation"]["accepted"] == 2
    assert reasons(lines) == [(lines[0]["file"], 3, "<record>", "malformed-json")]
    assert "validation.json:3 > <record>: item 3 is nested too deeply to be read" in run.err


def test_deeply_nested_jsonl_line(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    lines = (src / "train.jsonl").read_text(encoding="utf-8").splitlines()
    lines[9] = '{"question": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (src / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run, report, quarantined = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1 and report["read"] == TOTAL
    assert reasons(quarantined)[0][1:] == (10, "<record>", "malformed-json")
    assert "train.jsonl:10 > <record>: the line nests too deeply to be read" in run.err


def test_huge_integer_id_in_rlhf_json(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    text = (src / "harm.json").read_text(encoding="utf-8")
    (src / "harm.json").write_text(text.replace('"id": 5,', '"id": ' + "9" * 5000 + ",", 1), encoding="utf-8")
    run, report, lines = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1 and report["read"] == TOTAL
    assert reasons(lines)[0][1:] == (6, "id", "wrong-type")
    message = "'id' must be an integer or a non-empty string, got HugeNumber <a number of 5,000 digits>"
    assert f"harm.json:6 > id: {message}" in run.err


def test_huge_number_in_a_jsonl_line(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    lines = (src / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    record["question"] = 0
    lines[3] = json.dumps(record).replace('"question": 0', '"question": -' + "1" * 10_000)
    (src / "validation.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run, report, quarantined = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1
    assert reasons(quarantined)[0][1:] == (4, "question", "wrong-type")
    assert (
        "validation.jsonl:4 > question: must be string, got HugeNumber <a number of 10,000 digits>" in run.err
    )


def test_latin1_encoded_jsonl(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("jsonl")
    lines = (src / "train.jsonl").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace('"question": "', '"question": "Caf\u00e9 ', 1)
    (src / "train.jsonl").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    run, report, quarantined = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1 and report["read"] == TOTAL
    assert reasons(quarantined)[0][1:] == (3, "<record>", "not-utf8")
    assert "train.jsonl:3 > <record>: the line is not UTF-8 (byte 0xe9 at offset" in run.err


def test_latin1_encoded_rlhf_json(cli, sample_copy, tmp_path: Path) -> None:
    src = sample_copy("rlhf-json")
    text = (src / "help.json").read_text(encoding="utf-8")
    at = text.index('"id": 40')
    text = text[:at] + '"note": "caf\u00e9", ' + text[at:]
    (src / "help.json").write_bytes(text.encode("latin-1"))
    run, report, lines = validate(cli, src, tmp_path)
    assert run.code == 1 and report["quarantined"] == 1
    assert report["splits"]["test"]["accepted"] == 53 + 40  # harm, and help's items before it
    assert reasons(lines)[0][1:] == (0, "<file>", "not-utf8")
    offset = text.encode("latin-1").index(b"\xe9")
    assert f"help.json:0 > <file>: the file is not UTF-8 (byte 0xe9 at offset {offset:,})" in run.err
