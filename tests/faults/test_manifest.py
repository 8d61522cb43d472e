"""Fault injection (issue 12, item 6): manifests and ``spa-vl verify``, and ``spa-vl card DIR``.

One test per fault kind. A malformed MANIFEST.json is a verify failure (exit 1) naming
MANIFEST.json and the key; every entry on disk the manifest does not list is named; listed paths
that leave the release are refused; nothing ever blocks on a FIFO (``pytest.mark.timeout``).
No test may see a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from spa_vl.release.build import build_release
from spa_vl.release.manifest import ManifestError, ReleaseManifest
from spa_vl.release.verify import verify_release
from spa_vl.sample import SampleSpec, write_sample

SMALL = SampleSpec(train=20, validation_per_sub=1, test_per_sub=1)  # 179 rows: fast to build
SHARD = "data/misinformation/train-00000-of-00001.parquet"  # one of the small sample's shards


def build_small_release(root: Path) -> Path:
    """A real release of the small sample (about 3 s), rendered card included."""
    raw = write_sample(root / "raw", "hub", SMALL)
    return build_release(raw, root / "rel", quarantine=root / "rel.quarantine.jsonl").out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_release(tmp_path_factory.mktemp("manifest"))


@pytest.fixture
def rel(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "rel", symlinks=True))


def edit_manifest(rel: Path, change: Callable[[dict], object]) -> None:
    path = rel / "MANIFEST.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    result = change(data)
    path.write_text(json.dumps(data if result is None else result), encoding="utf-8")


def entry(data: dict, relpath: str = SHARD) -> dict:
    return next(f for f in data["files"] if f["path"] == relpath)


def test_a_fresh_release_verifies(rel: Path, cli) -> None:
    run = cli("verify", rel)
    assert run.code == 0, run.err
    assert "files match MANIFEST.json" in run.out


# -- the folder and the manifest file ---------------------------------------------------------


def test_verify_a_missing_folder(tmp_path: Path, cli) -> None:
    cli("verify", tmp_path / "nowhere").assert_one_line_error(2, "nowhere", "no such folder")


def test_verify_a_file_given_as_folder(rel: Path, cli) -> None:
    cli("verify", rel / "README.md").assert_one_line_error(2, "README.md", "not a folder")


def test_verify_a_folder_without_manifest(tmp_path: Path, cli) -> None:
    cli("verify", tmp_path).assert_one_line_error(2, "MANIFEST.json", "no manifest")


def test_truncated_manifest(rel: Path, cli) -> None:
    path = rel / "MANIFEST.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "not valid JSON", "line")


def test_empty_manifest(rel: Path, cli) -> None:
    (rel / "MANIFEST.json").write_bytes(b"")
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "not valid JSON")


def test_manifest_not_utf8(rel: Path, cli) -> None:
    (rel / "MANIFEST.json").write_bytes(b'{"version": "\xff\xfe"}')
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "not UTF-8")


def test_manifest_not_an_object(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d["files"])
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "must be a JSON object, not a list")


def test_manifest_missing_key(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.pop("version") and None)
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "missing key 'version'")


def test_manifest_unknown_key(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(uploaded_by="someone"))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "unknown key 'uploaded_by'")


def test_manifest_unknown_key_in_a_file_entry(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(mtime=0))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "files[", ".mtime", "unknown key")


def test_manifest_null_files_list(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(files=None))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "'files' must be a list, not null")


def test_manifest_wrong_type_of_version(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(version=1.0))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "'version' must be a string")


def test_manifest_source_not_an_object(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(source=["hub"]))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "'source' must be an object")


def test_manifest_entry_not_an_object(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d["files"].append("README.md"))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "must be an object, not a string")


def test_manifest_bytes_as_text(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(bytes=str(entry(d)["bytes"])))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", ".bytes' must be a whole number")


def test_manifest_negative_rows(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(rows=-1))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", ".rows' must be null or a whole number")


def test_manifest_sha256_not_hex(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(sha256="abc"))
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", ".sha256' must be 64 lowercase hex")


def test_manifest_is_a_folder(rel: Path, cli) -> None:
    (rel / "MANIFEST.json").unlink()
    (rel / "MANIFEST.json").mkdir()
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "not a regular file")


@pytest.mark.timeout(30)
def test_manifest_is_a_fifo(rel: Path, cli) -> None:
    (rel / "MANIFEST.json").unlink()
    os.mkfifo(rel / "MANIFEST.json")
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", "not a regular file")


def test_manifest_error_from_python_names_the_key(rel: Path) -> None:
    edit_manifest(rel, lambda d: d.update(counts=None))
    with pytest.raises(ManifestError, match=r"MANIFEST.json: key 'counts' must be an object, not null"):
        ReleaseManifest.load(rel)


# -- listed paths that leave the release ---------------------------------------------------------


def test_listed_path_going_up(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(path="../outside.parquet"))
    cli("verify", rel).assert_one_line_error(1, "../outside.parquet: unsafe-path", "'..'")


def test_listed_absolute_path(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(path="/etc/passwd"))
    run = cli("verify", rel)
    run.assert_one_line_error(1, "/etc/passwd: unsafe-path", "is absolute")
    assert f"{SHARD}: extra" in run.err  # the real shard is now unlisted


def test_listed_path_with_nul(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: entry(d).update(path="data/x\u0000.parquet"))
    cli("verify", rel).assert_one_line_error(1, "unsafe-path", "backslash or NUL")


def test_listed_file_is_a_link_out(rel: Path, tmp_path: Path, cli) -> None:
    outside = tmp_path / "outside.parquet"
    shutil.copy(rel / SHARD, outside)  # same bytes: only the link's target gives it away
    (rel / SHARD).unlink()
    (rel / SHARD).symlink_to(outside)
    cli("verify", rel).assert_one_line_error(1, f"{SHARD}: unsafe-path", "outside the release")


def test_listed_file_under_a_folder_linked_out(rel: Path, tmp_path: Path, cli) -> None:
    outside = Path(shutil.copytree(rel / "data/misinformation", tmp_path / "elsewhere"))
    shutil.rmtree(rel / "data/misinformation")
    (rel / "data/misinformation").symlink_to(outside, target_is_directory=True)
    run = cli("verify", rel)
    run.assert_one_line_error(1, f"{SHARD}: unsafe-path", "outside the release")
    assert "data/misinformation: extra" in run.err  # the link itself is not part of a release


def test_listed_file_is_a_folder(rel: Path, cli) -> None:
    (rel / "CHANGELOG.md").unlink()
    (rel / "CHANGELOG.md").mkdir()
    cli("verify", rel).assert_one_line_error(1, "CHANGELOG.md: not-a-file", "it is a folder")


@pytest.mark.timeout(30)
def test_listed_file_is_a_fifo(rel: Path, cli) -> None:
    (rel / SHARD).unlink()
    os.mkfifo(rel / SHARD)
    cli("verify", rel).assert_one_line_error(1, f"{SHARD}: not-a-file", "a FIFO")


def test_listed_twice(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d["files"].append(dict(entry(d))))
    cli("verify", rel).assert_one_line_error(1, f"{SHARD}: manifest", "listed twice")


# -- files the manifest does not list ------------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    [".hidden", "data/.DS_Store", "data/misinformation/deep/er/notes.txt", ".git/config", "images/.x/y"],
)
def test_unlisted_file_at_any_depth_is_named(rel: Path, cli, relpath: str) -> None:
    (rel / relpath).parent.mkdir(parents=True, exist_ok=True)
    (rel / relpath).write_text("not in the manifest")
    cli("verify", rel).assert_one_line_error(1, f"{relpath}: extra", "not listed")


@pytest.mark.timeout(30)
def test_unlisted_fifo_is_named_not_opened(rel: Path, cli) -> None:
    os.mkfifo(rel / "data" / "pipe.parquet")
    cli("verify", rel).assert_one_line_error(1, "data/pipe.parquet: extra", "a FIFO")


def test_unlisted_link_to_a_folder_is_named_not_followed(rel: Path, tmp_path: Path, cli) -> None:
    big = tmp_path / "big"
    (big / "sub").mkdir(parents=True)
    (big / "sub" / "file").write_text("x")
    (rel / "linked").symlink_to(big, target_is_directory=True)
    run = cli("verify", rel)
    run.assert_one_line_error(1, "linked: extra", "a link to")
    assert "linked/sub" not in run.err


# -- --json -------------------------------------------------------------------------------------


def test_verify_json_lists_where_code_message(rel: Path, cli) -> None:
    (rel / "CHANGELOG.md").unlink()
    (rel / ".hidden").write_text("x")
    run = cli("verify", rel, "--json")
    assert run.code == 1 and "Traceback" not in run.err
    problems = json.loads(run.out)
    assert problems == [
        {"where": ".hidden", "code": "extra", "message": "on disk, not listed in the manifest"},
        {"where": "CHANGELOG.md", "code": "missing", "message": "listed in the manifest, not on disk"},
    ]


def test_verify_json_of_a_clean_release_is_empty(rel: Path, cli) -> None:
    run = cli("verify", rel, "--json")
    assert (run.code, json.loads(run.out)) == (0, [])


def test_verify_json_of_a_malformed_manifest(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(files=None))
    run = cli("verify", rel, "--json")
    assert run.code == 1
    [problem] = json.loads(run.out)
    assert problem["where"] == "MANIFEST.json" and problem["code"] == "manifest"
    assert "'files'" in problem["message"]


def test_card_check_json(rel: Path, cli) -> None:
    readme = rel / "README.md"
    readme.write_text(readme.read_text().replace("license: cc-by-4.0\n", "license: cc-by-4\n"))
    run = cli("card", rel, "--check", "--json")
    assert run.code == 1 and "Traceback" not in run.err
    problems = json.loads(run.out)
    assert {"where": f"{readme}: license", "code": "metadata-schema"}.items() <= problems[0].items()
    assert "'cc-by-4' is not an allowed value" in problems[0]["message"]
    assert cli("card", rel, "--check", "--json").code == 1


def test_card_check_json_clean(rel: Path, cli) -> None:
    run = cli("card", rel, "--check", "--json")
    assert (run.code, json.loads(run.out)) == (0, [])


def test_card_json_without_check_is_a_usage_error(rel: Path, cli) -> None:
    cli("card", rel, "--json").assert_one_line_error(2, "--json goes with --check")


# -- spa-vl card DIR -----------------------------------------------------------------------------


def test_card_on_a_missing_folder(tmp_path: Path, cli) -> None:
    cli("card", tmp_path / "nowhere").assert_one_line_error(2, "nowhere", "no such folder")


def test_card_on_a_folder_that_is_not_a_release(tmp_path: Path, cli) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    cli("card", tmp_path).assert_one_line_error(2, str(tmp_path), "is it a release folder")
    assert (tmp_path / "notes.txt").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: permissions are moot")
def test_card_on_a_read_only_release(rel: Path, cli) -> None:
    before = (rel / "README.md").read_bytes()
    rel.chmod(0o555)
    try:
        cli("card", rel).assert_one_line_error(2, str(rel), "permission denied")
    finally:
        rel.chmod(0o755)
    assert (rel / "README.md").read_bytes() == before


def test_card_where_a_folder_holds_the_readme(rel: Path, cli) -> None:
    (rel / "README.md").unlink()
    (rel / "README.md").mkdir()
    cli("card", rel).assert_one_line_error(2, "README.md", "is a folder")


def test_card_refuses_tampered_data(rel: Path, cli) -> None:
    shard = rel / SHARD
    data = bytearray(shard.read_bytes())
    data[-20] ^= 0x01
    shard.write_bytes(bytes(data))
    before = (rel / "README.md").read_bytes()
    cli("card", rel).assert_one_line_error(1, SHARD, "altered", "does not match MANIFEST.json")
    assert (rel / "README.md").read_bytes() == before


def test_card_check_on_a_truncated_parquet(rel: Path, cli) -> None:
    shard = rel / SHARD
    shard.write_bytes(shard.read_bytes()[:100])
    run = cli("card", rel, "--check")
    run.assert_one_line_error(1, "cannot be read")


@pytest.mark.timeout(30)
def test_card_check_on_a_fifo_parquet(rel: Path, cli) -> None:
    (rel / SHARD).unlink()
    os.mkfifo(rel / SHARD)
    cli("card", rel, "--check").assert_one_line_error(1, SHARD, "not a regular file")


def test_card_check_on_a_malformed_manifest(rel: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(files=None))
    cli("card", rel, "--check").assert_one_line_error(1, "MANIFEST.json", "'files' must be a list")


def test_verify_problems_share_the_problem_type(rel: Path) -> None:
    from spa_vl.problems import Issue, Problem

    (rel / "CHANGELOG.md").unlink()
    [problem] = verify_release(rel)
    assert isinstance(problem, Issue)
    assert (problem.where, problem.code) == ("CHANGELOG.md", "missing")
    record = Problem("train.jsonl", 3, "question", "empty-text", "must hold text")
    assert isinstance(record, Issue) and record.where == "train.jsonl:3 > question"
    assert Issue.to_dict(record) == {
        "where": "train.jsonl:3 > question",
        "code": "empty-text",
        "message": "must hold text",
    }


def test_release_checks_share_the_problem_type(rel: Path, cli) -> None:
    from spa_vl.problems import Issue
    from spa_vl.release.hub import ReleaseRefused, plan_release

    edit_manifest(rel, lambda d: entry(d).update(path="../up.parquet"))
    with pytest.raises(ReleaseRefused) as err:
        plan_release(rel, "acme/spa-vl")
    assert all(isinstance(p, Issue) for p in err.value.issues)
    assert ("../up.parquet", "unsafe-path") in {(p.where, p.code) for p in err.value.issues}
    run = cli("release", rel, "--repo-id", "acme/spa-vl", "--dry-run")
    run.assert_one_line_error(1, "nothing was sent", "../up.parquet: unsafe-path")


def test_names_that_are_not_utf8_are_reported_not_crashed_on(rel: Path, cli) -> None:
    (rel / os.fsdecode(b"data/\xff\xfe.bin")).write_text("x")  # an undecodable name on disk
    edit_manifest(rel, lambda d: entry(d).update(path="data/\ud800.parquet"))  # and in the manifest
    run = cli("verify", rel, "--json")
    assert run.code == 1 and "Traceback" not in run.err
    found = {(p["where"], p["code"]) for p in json.loads(run.out)}
    assert ("data/\udcff\udcfe.bin", "extra") in found
    assert ("data/\ud800.parquet", "missing") in found
    cli("verify", rel).assert_one_line_error(1, "missing", "extra")


# -- spa-vl diff reads only data that verifies -------------------------------------------------


def test_diff_refuses_a_truncated_shard(rel: Path, built: Path, cli) -> None:
    shard = rel / SHARD
    shard.write_bytes(shard.read_bytes()[:1000])
    run = cli("diff", built, rel)
    run.assert_one_line_error(1, str(rel), f"{SHARD}: altered", "nothing is compared")


def test_diff_refuses_a_malformed_manifest(rel: Path, built: Path, cli) -> None:
    edit_manifest(rel, lambda d: d.update(files=None))
    cli("diff", rel, built).assert_one_line_error(1, "MANIFEST.json", "'files' must be a list")


def test_diff_of_a_missing_folder(built: Path, tmp_path: Path, cli) -> None:
    cli("diff", built, tmp_path / "nowhere").assert_one_line_error(2, "nowhere", "no such folder")


@pytest.mark.parametrize(
    "text, needle",
    [
        ('{"version": ' + "9" * 5000 + "}", "not valid JSON"),  # past Python's int-digit limit
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('\ufeff{"version": "1.0.0"}', "not valid JSON"),  # a byte-order mark
    ],
    ids=["huge-number", "deep-nesting", "bom"],
)
def test_pathological_manifest_json(rel: Path, cli, text: str, needle: str) -> None:
    (rel / "MANIFEST.json").write_text(text, encoding="utf-8")
    cli("verify", rel).assert_one_line_error(1, "MANIFEST.json", needle)
