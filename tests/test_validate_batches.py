"""The column-batch path (``spa_vl.validate.batches``) against the row path, its reference.

A Hub-layout sample gets faults of many kinds planted (text, labels, images, file-level
problems, unusual column types); validating and building it both ways must give the same
report, the same quarantine bytes and byte-identical release files. The vectorised checks are
also held against their row-path twins one value at a time.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import spa_vl.validate.batches as batches
from spa_vl.image_check import ImageLimits, check_image, jpeg_sound
from spa_vl.release.build import build_release
from spa_vl.sources import open_source
from spa_vl.validate import (
    RecordValidator,
    ValidationOptions,
    ValidationReport,
    validate_rows,
    validate_source,
)
from spa_vl.validate.parallel import _validate_part
from spa_vl.validate.schema import text_ok

SHARD = "data/train-{:05d}-of-00008.parquet"


# -- planting faults ------------------------------------------------------------------------------


def rewrite(file: Path, edit: Callable[[dict[str, list]], None], types: dict | None = None) -> None:
    """Rewrite a parquet file after ``edit`` changed its columns (name -> list of values);
    column types are kept unless ``types`` names new ones."""
    table = pq.read_table(file)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    edit(columns)
    old = {f.name: f.type for f in table.schema}
    want = {**old, **(types or {})}
    new = pa.table({n: pa.array(v, want.get(n, pa.string())) for n, v in columns.items()})
    pq.write_table(new.replace_schema_metadata(table.schema.metadata), file, row_group_size=100)


def jpeg(size: tuple[int, int] = (40, 30), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buf, "JPEG", **save)
    return buf.getvalue()


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (20, 140, 90)).save(buf, "PNG")
    return buf.getvalue()


def with_sof_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF0 size replaced (the pixels stay as they are)."""
    i = data.index(b"\xff\xc0")
    return data[: i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[i + 9 :]


def plant_train(c: dict[str, list]) -> None:
    q, ch, rj, img, name = c["question"], c["chosen"], c["rejected"], c["image"], c["image_name"]
    q[0] = "   \t\n"  # whitespace only
    q[1] = "\u3000\u2003"  # whitespace only, not ASCII
    ch[2] = "ok\x00not ok"  # NUL
    rj[3] = "  " + ch[3] + "\n"  # identical after strip()
    rj[4] = ch[4] + "\u00a0"  # identical after strip(): NBSP is whitespace to Python
    img[5] = {**img[5], "bytes": jpeg()[:-60]}  # truncated
    img[6] = {**img[6], "bytes": b""}  # empty
    img[7] = {**img[7], "bytes": None}  # no bytes at all
    img[8] = {**img[8], "bytes": with_sof_size(jpeg(), 0, 30)}  # SOF without a size
    name[9] = "Nope/Not a category/nothing/1.jpg"  # unlabeled, accepted
    name[10] = None  # unlabeled, accepted
    q[11] = "x" * 16385  # too long
    q[12] = "¿¡ ☃ …"  # no ASCII word: doubted, accepted by the row path
    ch[13], rj[13] = "  Trailing and leading  ", "Different\u00a0"  # ends not plain: strip() decides
    img[14] = {**img[14], "bytes": png()}  # PNG, checked image by image
    img[15] = {**img[15], "path": "some/dir/pic.jpg"}  # the release keeps the base name
    img[16] = {**img[16], "path": ""}  # the release writes None
    q[17] = "é" * 9000  # 18,000 bytes but 9,000 characters: doubted, accepted
    name[18] = name[18].replace("/", "\\")  # backslashes: the labels are still recovered
    name[19] = "/" + name[19] + "/"  # stray slashes: still recovered
    img[20] = {**img[20], "bytes": with_sof_size(jpeg(), 40, 20000)}  # over the side limit
    img[21] = {**img[21], "bytes": jpeg(progressive=True)}  # progressive: SOF2
    img[22] = {**img[22], "bytes": jpeg(size=(4, 4))}  # under the side limit
    ch[23] = rj[23] = None  # answers missing on a train row
    q[24] = "why?"  # short but fine


def plant(src: Path) -> None:
    rewrite(src / SHARD.format(0), plant_train)
    # a whole file with a problem: an unexpected column
    rewrite(src / SHARD.format(1), lambda c: c.update(extra=["x"] * len(c["question"])))
    # an image struct without `path`: the fast path leaves the file to the row path, whose
    # rows are accepted and then written among the column batches of the other files
    table = pq.read_table(src / SHARD.format(2))
    images = pa.array([{"bytes": v["bytes"]} for v in table.column("image").to_pylist()])
    pq.write_table(table.set_column(0, "image", images), src / SHARD.format(2), row_group_size=100)
    # text as large_string: read by the fast path, cast
    rewrite(src / SHARD.format(3), lambda c: None, types={"question": pa.large_string()})

    def validation(c: dict[str, list]) -> None:
        c["class1"][0] = "Toxicity Harms"  # not a domain
        c["class3"][1] = c["class3"][60]  # under another class2
        c["class2"][2] = None  # incomplete
        c["class1"][3] = c["class2"][3] = c["class3"][3] = None  # unlabeled, accepted
        c["class1"][4] = ""  # empty label

    rewrite(src / "validation/validation-00000-of-00001.parquet", validation)

    def harm(c: dict[str, list]) -> None:
        c["question"][0] = ""
        c["class3"][1] = "not a subcategory"

    rewrite(src / "test/harm-00000-of-00001.parquet", harm)


@pytest.fixture
def planted(sample_copy, monkeypatch) -> Path:
    src = sample_copy("hub")
    plant(src)
    monkeypatch.chdir(src)  # relative file names in messages, as the CLI shows them
    return src


@pytest.fixture
def spy(monkeypatch) -> list[int]:
    """Rows the fast path checked with compute kernels (to prove it ran)."""
    seen: list[int] = []
    sure = batches.BatchChecker.sure

    def counting(self, cb):
        seen.append(cb.num_rows)
        return sure(self, cb)

    monkeypatch.setattr(batches.BatchChecker, "sure", counting)
    return seen


def both_ways(src: Path, tmp: Path, **options) -> tuple[dict, dict, bytes, bytes]:
    reports, quarantines = [], []
    for fast in (True, False):
        q = tmp / f"q-{fast}.jsonl"
        report = validate_source(src, quarantine=q, fast=fast, **options)
        d = report.to_dict()
        d.pop("quarantine")
        reports.append(d)
        quarantines.append(q.read_bytes())
    return reports[0], reports[1], quarantines[0], quarantines[1]


# -- validation: the same report and quarantine ---------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [None, ValidationOptions(deep=True), ValidationOptions(check_images=False)],
    ids=["default", "deep", "no-images"],
)
def test_reports_and_quarantine_are_the_row_paths(planted: Path, tmp_path: Path, spy, options) -> None:
    fast, rows, q_fast, q_rows = both_ways(planted, tmp_path, options=options)
    assert spy, "the fast path did not run"
    assert fast == rows
    assert q_fast == q_rows
    # the planted faults were found (so equality above is not that of two empty reports)
    codes = fast["problems"]
    for code in ("empty-text", "nul-byte", "identical-answers", "too-long", "unknown-label"):
        assert codes.get(code), (code, codes)
    for code in ("label-mismatch", "incomplete-labels", "unexpected-column", "wrong-type"):
        assert codes.get(code), (code, codes)
    if options is None:
        for code in ("truncated-image", "empty-image", "image-size", "corrupt-image"):
            assert codes.get(code), (code, codes)
    assert codes.get("missing-image")
    # 67 rows of the shard with a stray column, 13 + 4 + 2 planted faulty rows (5 of them
    # only in their image)
    images = options is None or options.check_images
    assert fast["quarantined"] == 67 + (13 if images else 8) + 4 + 2
    assert fast["reconciles"]
    lines = [json.loads(line) for line in q_fast.decode().splitlines()]
    assert len(lines) == fast["quarantined"]


def test_clean_sample_is_accepted_in_batches(sample_dirs, spy) -> None:
    fast = validate_source(sample_dirs["hub"])
    rows = validate_source(sample_dirs["hub"], fast=False)
    assert fast.to_dict() == rows.to_dict()
    assert fast.ok and fast.accepted == 747
    assert sum(spy) == 747  # every row went through the kernels, none through files of rows


def test_ids_stay_unique_across_sources(sample_dirs, sample_copy, monkeypatch) -> None:
    """One validator over two copies of a source: the second is all duplicates, found by the
    seen-set that the batches feed as the rows do."""
    copy = sample_copy("hub")
    monkeypatch.chdir(copy.parent)
    sources = [open_source(sample_dirs["hub"]), open_source(copy)]
    results = []
    for run in (
        lambda src, r, v: batches.validate_batches(src.batches(), r, validator=v),
        lambda src, r, v: validate_rows(src.rows(), r, validator=v),
    ):
        validator, reports = RecordValidator(), []
        for src in sources:
            report = ValidationReport()
            for _ in run(src, report, validator):
                pass
            reports.append(report.to_dict())
        results.append(reports)
    assert results[0] == results[1]
    first, second = results[0]
    assert first["quarantined"] == 0
    assert second["quarantined"] == 747 and second["problems"] == {"duplicate-id": 747}
    assert "was already used at " in second["examples"][0]


def test_worker_processes_use_batches_too(planted: Path, tmp_path: Path) -> None:
    src = open_source(planted)
    for part in src.parts():
        fast, q_fast = _validate_part(src, part, None, fast=True)
        rows, q_rows = _validate_part(src, part, None, fast=False)
        assert fast.to_dict() == rows.to_dict()
        assert q_fast == q_rows


def test_worker_processes_on_damaged_files(sample_copy) -> None:
    """A garbage footer: the file is one unreadable record in both paths, and the shards after
    it have no positions (their row counts before them are unknown)."""
    src = sample_copy("hub")
    shard = src / SHARD.format(1)
    shard.write_bytes(shard.read_bytes()[:-30] + b"\x00" * 26 + b"PAR1")
    source = open_source(src)
    parts = source.parts(("train",))
    assert [p.start for p in parts] == [0, 67, None, None, None, None, None, None]
    assert parts[1].rows is None and parts[2].row_id(3) == "train/train-00002-of-00008/000003"
    for part in parts:
        fast, q_fast = _validate_part(source, part, None, fast=True)
        rows, q_rows = _validate_part(source, part, None, fast=False)
        assert fast.to_dict() == rows.to_dict() and q_fast == q_rows
    assert _validate_part(source, parts[1], None)[0].problems == {"unreadable-file": 1}


# -- the release: byte-identical files ------------------------------------------------------------


def files_of(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def build_both(src: Path, tmp: Path, **kwargs) -> tuple[dict[str, bytes], dict[str, bytes], tuple]:
    out, reports = {}, []
    for fast in (True, False):
        dest = tmp / f"release-{fast}"
        result = build_release(src, dest, quarantine=tmp / f"q-{fast}.jsonl", fast=fast, **kwargs)
        out[fast] = files_of(dest)
        reports.append(result.report.to_dict())
    assert reports[0]["quarantine"] != reports[1]["quarantine"]
    for r in reports:
        r.pop("quarantine")
    assert reports[0] == reports[1]
    quarantine = ((tmp / "q-True.jsonl").read_bytes(), (tmp / "q-False.jsonl").read_bytes())
    return out[True], out[False], quarantine


def test_release_is_byte_identical(planted: Path, tmp_path: Path, spy) -> None:
    # A small shard size: several shards per (folder, split), cut at the same rows.
    fast, rows, (q_fast, q_rows) = build_both(planted, tmp_path, max_shard_size=150_000)
    assert spy
    assert sorted(fast) == sorted(rows)
    assert [name for name in fast if fast[name] != rows[name]] == []
    assert q_fast == q_rows and q_fast
    folders = {n.split("/")[1] for n in fast if n.startswith("data/")}
    train = max(([n for n in sorted(fast) if n.startswith(f"data/{f}/train-")] for f in folders), key=len)
    assert len(train) > 3
    # the planted image paths came through as to_example writes them
    paths = [
        v["path"]
        for name in sorted(fast)
        if "/train-" in name
        for v in pq.read_table(io.BytesIO(fast[name])).column("image").to_pylist()
    ]
    assert "pic.jpg" in paths and None in paths


def test_release_source_both_ways(planted: Path, tmp_path: Path, spy) -> None:
    """A release folder is read in column batches too; faults planted in it, including ids
    repeated within a batch, come out as the row path reports them."""
    release = tmp_path / "release"
    build_release(planted, release, fast=False)
    shard = max(sorted((release / "data").glob("*/train-*.parquet")), key=lambda p: p.stat().st_size)

    def edit(c: dict[str, list]) -> None:
        c["question"][0] = " "
        c["id"][1] = "has space"
        c["id"][5] = c["id"][2]  # a duplicate inside the batch
        c["rejected"][3] = c["chosen"][3]
        c["domain"][4] = -1  # labels unknown from here on
        c["category"][4] = -1
        c["subcategory"][4] = -1
        c["eval_set"][6] = 1  # an eval set on a train row

    table = pq.read_table(shard)
    columns = {n: table.column(n).to_pylist() for n in table.column_names}
    edit(columns)
    new = pa.table({n: pa.array(columns[n], table.schema.field(n).type) for n in table.column_names})
    pq.write_table(new.replace_schema_metadata(table.schema.metadata), shard, row_group_size=100)

    fast, rows, q_fast, q_rows = both_ways(release, tmp_path)
    assert spy
    assert fast == rows and q_fast == q_rows
    for code in ("empty-text", "bad-id", "duplicate-id", "identical-answers", "bad-value"):
        assert fast["problems"].get(code), (code, fast["problems"])
    a, b, (qa, qb) = build_both(release, tmp_path / "rebuilt")
    assert a == b and qa == qb


# -- the vectorised checks, value by value --------------------------------------------------------

TEXTS = [
    "plain words",
    "",
    " ",
    "\t\n",
    "\u3000",
    "\u00a0x",
    "x\u00a0",
    "\x1c",
    "a\x00b",
    "\x00",
    "???",
    "é",
    "☃ snow",
    "🙂",
    "x" * 16384,
    "x" * 16385,
    "é" * 16384,
    "  padded  ",
    "\u2028line\u2029",
    None,
]


@pytest.mark.parametrize("max_len", [16384, 65536])
def test_text_check_is_never_laxer_than_the_row_path(max_len: int) -> None:
    col = pa.array(TEXTS, pa.string())
    sure = batches._text_ok(col, max_len)
    for value, ok in zip(TEXTS, sure, strict=True):
        if ok:
            assert text_ok(value, max_len), repr(value)
    assert sure[0] and not sure[1] and not sure[8]


def test_identical_answers_are_decided_as_str_strip_does() -> None:
    pairs = [
        ("a", "a"),
        ("a", "b"),
        (" a", "a"),
        ("a\u00a0", "a"),
        ("a\x1c", "a"),
        ("a\u3000", "a "),
        ("é", "é "),
        ("\u200ba", "a"),  # ZERO WIDTH SPACE is not whitespace to Python
        ("a.", "a"),
        (None, "a"),
    ]
    chosen = pa.array([c for c, _ in pairs], pa.string())
    rejected = pa.array([r for _, r in pairs], pa.string())
    same = batches._same_after_strip(chosen, rejected)
    want = [c is not None and c.strip() == r.strip() for c, r in pairs]
    assert same.tolist() == want


def image_variants() -> list[bytes]:
    base = jpeg((64, 48))
    cmyk = io.BytesIO()
    Image.new("CMYK", (30, 20)).save(cmyk, "JPEG")
    exif = io.BytesIO()
    img = Image.new("RGB", (50, 40))
    info = img.getexif()
    info[0x010E] = "a description " * 20
    img.save(exif, "JPEG", exif=info.tobytes())
    restart = io.BytesIO()
    Image.new("L", (33, 17)).save(restart, "JPEG", quality=50)
    return [
        base,
        jpeg((64, 48), progressive=True),
        jpeg((64, 48), quality=5),
        cmyk.getvalue(),
        exif.getvalue(),
        restart.getvalue(),
        base[:2] + b"\xff" + base[2:],  # a fill byte before the first marker
        base[:-2],  # no end marker
        base[: len(base) // 2],  # truncated
        base[:100],  # truncated in the header
        with_sof_size(base, 0, 48),
        with_sof_size(base, 64, 0),
        with_sof_size(base, 20000, 48),
        with_sof_size(base, 9000, 9000),  # a bomb by its header
        jpeg((7, 64)),
        jpeg((8, 8)),
        b"\xff\xd8\xff",
        b"\xff\xd8",
        b"",
        png(),
        b"GIF89a" + b"\x00" * 20,
        b"junk" * 40,
        base + b"trailing bytes after the end",
        base + b"\x00" * 70,  # end marker more than 64 bytes from the end
    ]


@pytest.mark.parametrize(
    "limits",
    [ImageLimits(), ImageLimits(min_side=1, max_side=70, max_pixels=3000), ImageLimits(formats=("PNG",))],
)
def test_jpeg_check_in_lockstep_is_never_laxer(limits: ImageLimits) -> None:
    images = image_variants()
    # In an array with an offset, as a filtered or sliced column is.
    array = pa.array([b"pad", *images], pa.binary()).slice(1)
    data, starts, ends = batches._buffers(array)
    sound = jpeg_sound(data, starts, ends, limits)
    for k, (image, ok) in enumerate(zip(images, sound, strict=True)):
        if ok:
            assert check_image(image, limits) == [], k
    if "JPEG" in limits.formats and limits.max_side > 100:
        # the plain, progressive, CMYK, EXIF and restart-marker JPEGs need no per-image check
        assert sound[:7].all(), sound[:7]
        # the end marker found in the last 64 bytes when the image does not end with it
        assert sound[-2] and not sound[-1]
    else:
        assert not sound[:7].all()


def test_jpeg_check_agrees_on_the_sample(sample_dirs) -> None:
    table = pq.read_table(sample_dirs["hub"] / SHARD.format(0))
    array = table.column("image").combine_chunks().field("bytes")
    data, starts, ends = batches._buffers(array)
    sound = jpeg_sound(data, starts, ends, ImageLimits())
    values = array.to_pylist()
    is_jpeg = np.array([v[:3] == b"\xff\xd8\xff" for v in values])
    assert (sound == is_jpeg).all()  # every sample JPEG is sound, no PNG is decided here
    assert all(check_image(v) == [] for v in values)


def test_checking_batches_does_not_import_pandas(sample_dirs) -> None:
    """pa.array/pa.scalar import pandas (~0.5 s) on first use; validation never needs it, and
    the fast path builds its arrays from buffers to keep it that way."""
    code = (
        "import sys\n"
        "from spa_vl.validate import validate_source\n"
        f"assert validate_source({str(sample_dirs['hub'])!r}).ok\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
