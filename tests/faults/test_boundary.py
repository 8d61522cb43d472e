"""Fault injection (issue 12, item 7): one error boundary in ``spa_vl.cli.main`` and ``LoadError``.

Every expected failure is one line ``spa-vl CMD: error: ...`` with exit 1 (the data failed a
check) or 2 (usage or environment: paths, permissions, a full or read-only disk, the network, a
missing extra); 130 on Ctrl-C. A traceback only with ``--debug`` or ``SPA_VL_DEBUG=1``; a real
bug still raises. The environment's faults are simulated by monkeypatching the function that
would meet them (a full disk cannot be made on demand); the network by ``HF_HUB_OFFLINE=1`` (no
network here either way) and by patching the huggingface_hub boundary (``HfApi``,
``snapshot_download``) to raise the client's own connection errors.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

import spa_vl
import spa_vl.card.render
import spa_vl.release.verify
from spa_vl.cli import COMMANDS, build_parser
from spa_vl.errors import DataError, SpaVLError
from spa_vl.loading import UPSTREAM_REPO, LoadError
from spa_vl.problems import SourceError

from .test_manifest import build_small_release


def _raiser(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.fixture
def failing_verify(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``fail(exc)``: make ``spa-vl verify DIR`` meet ``exc``; returns DIR."""

    def fail(exc: BaseException) -> Path:
        monkeypatch.setattr(spa_vl.release.verify, "verify_release", _raiser(exc))
        return tmp_path

    return fail


# -- the environment: exit 2 naming the file -----------------------------------------------------


def test_disk_full_names_the_file(failing_verify, cli) -> None:
    where = failing_verify(OSError(errno.ENOSPC, "No space left on device", "/data/out/train.parquet"))
    run = cli("verify", where)
    run.assert_one_line_error(2, "spa-vl verify: error: /data/out/train.parquet", "no space left")
    assert run.err.count("\n") == 1


def test_read_only_file_system_names_the_file(failing_verify, cli) -> None:
    where = failing_verify(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/MANIFEST.json"))
    cli("verify", where).assert_one_line_error(2, "/mnt/ro/MANIFEST.json", "read-only")


def test_permission_denied_names_the_file(failing_verify, cli) -> None:
    where = failing_verify(PermissionError(errno.EACCES, "Permission denied", "/srv/rel/README.md"))
    cli("verify", where).assert_one_line_error(2, "/srv/rel/README.md: Permission denied")


def test_rename_failure_names_both_files(failing_verify, cli) -> None:
    exc = OSError(errno.EXDEV, "Invalid cross-device link", "/a/.staging", None, "/b/spa_vl")
    cli("verify", failing_verify(exc)).assert_one_line_error(2, "/a/.staging -> /b/spa_vl")


def test_disk_full_while_writing_the_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli, release: Path
) -> None:
    readme = release / "README.md"
    before = readme.read_bytes()
    exc = OSError(errno.ENOSPC, "No space left on device", str(readme))
    monkeypatch.setattr(spa_vl.card.render, "render_card", _raiser(exc))
    cli("card", release).assert_one_line_error(2, "spa-vl card: error:", str(readme), "no space left")
    assert readme.read_bytes() == before


def test_missing_extra_says_what_to_install(failing_verify, cli) -> None:
    exc = ModuleNotFoundError("No module named 'ray'", name="ray")
    cli("verify", failing_verify(exc)).assert_one_line_error(2, "'ray'", "not installed", "pip install")


# -- our own errors, interrupts, bugs --------------------------------------------------------------


def test_source_error_is_a_data_failure(failing_verify, cli) -> None:
    exc = SourceError("data/train-00003-of-00008.parquet: shard missing from a set of 8")
    cli("verify", failing_verify(exc)).assert_one_line_error(1, "train-00003-of-00008.parquet")
    assert isinstance(exc, DataError) and isinstance(exc, ValueError)


def test_ctrl_c_is_exit_130_with_one_line(failing_verify, cli) -> None:
    run = cli("verify", failing_verify(KeyboardInterrupt()))
    run.assert_one_line_error(130, "spa-vl verify: interrupted")
    assert run.err.count("\n") == 1


def test_a_bug_keeps_its_traceback(failing_verify, cli) -> None:
    where = failing_verify(ZeroDivisionError("a real bug"))
    with pytest.raises(ZeroDivisionError):
        cli("verify", where)


@pytest.mark.parametrize("flag_at", ["global", "subcommand"])
def test_debug_flag_shows_the_traceback(failing_verify, cli, flag_at: str) -> None:
    where = failing_verify(PermissionError(errno.EACCES, "Permission denied", "/x/y"))
    argv = ["--debug", "verify", where] if flag_at == "global" else ["verify", where, "--debug"]
    run = cli(*argv)
    assert run.code == 2
    assert "Traceback" in run.err and "spa-vl verify: error: /x/y: Permission denied" in run.err


def test_debug_environment_variable(failing_verify, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    where = failing_verify(DataError("tampered"))
    monkeypatch.setenv("SPA_VL_DEBUG", "1")
    run = cli("verify", where)
    assert run.code == 1 and "Traceback" in run.err and "tampered" in run.err
    monkeypatch.setenv("SPA_VL_DEBUG", "0")
    cli("verify", where).assert_one_line_error(1, "tampered")


def test_every_subcommand_accepts_quiet_and_debug() -> None:
    parser = build_parser()
    needs = {
        "sample": ["OUT"],
        "validate": ["SRC"],
        "build": ["SRC"],
        "card": ["DIR"],
        "verify": ["DIR"],
        "diff": ["OLD", "NEW"],
        "release": ["DIR", "--repo-id", "o/n"],
        "audit": ["SRC", "--out", "r.json"],
        "train": ["dpo", "--model", "m", "--data", "d", "--output-dir", "o"],
    }
    assert set(needs) == set(COMMANDS)
    for name, rest in needs.items():
        args = parser.parse_args([name, *rest, "--quiet", "--debug"])
        assert args.quiet is True and args.debug is True, name
        assert parser.parse_args([name, *rest]).quiet is False, name


# -- the network -----------------------------------------------------------------------------------


@pytest.fixture
def release(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    base = tmp_path_factory.getbasetemp() / "boundary-release"
    if not (base / "rel").exists():
        build_small_release(base)
    return Path(shutil.copytree(base / "rel", tmp_path / "rel"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _pushable(release: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("card", release, "--repo-id", "acme/spa-vl", "--quiet").code == 0
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr("spa_vl.release.hub.time.sleep", lambda s: None)  # retries: no waiting


def test_release_to_an_unreachable_hub(release: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    from huggingface_hub import HfApi

    _pushable(release, cli, monkeypatch)
    monkeypatch.setattr(HfApi, "create_repo", _raiser(requests.ConnectionError("Connection refused")))
    run = cli("release", release, "--repo-id", "acme/spa-vl", "--quiet")
    run.assert_one_line_error(2, "acme/spa-vl", "the Hugging Face Hub is unreachable", "run the same")
    assert "hf_not_a_real_token" not in run.err and run.err.count("\n") == 1


def test_release_with_hf_hub_offline(release: Path, cli, monkeypatch: pytest.MonkeyPatch, offline) -> None:
    _pushable(release, cli, monkeypatch)
    run = cli("release", release, "--repo-id", "acme/spa-vl", "--quiet")
    run.assert_one_line_error(2, "acme/spa-vl", "unreachable", "HF_HUB_OFFLINE")


def test_network_failure_escaping_a_command_says_the_hub_is_unreachable(failing_verify, cli) -> None:
    import httpx2

    request = httpx2.Request("GET", "https://huggingface.co/api/datasets/acme/corpus")
    exc = httpx2.ConnectError("[Errno -2] Name or service not known", request=request)
    run = cli("verify", failing_verify(exc))
    run.assert_one_line_error(2, "https://huggingface.co/api/datasets/acme/corpus", "unreachable")


# -- spa_vl.load: LoadError with the same sentences ------------------------------------------------


def test_load_error_is_a_spa_vl_error_and_a_value_error() -> None:
    assert issubclass(LoadError, SpaVLError) and issubclass(LoadError, ValueError)
    assert LoadError.exit_code == 2


@pytest.mark.parametrize("typo", ["./spa_vl_typo", "../data", "spa_vl_typo", "~/nowhere/spa_vl", "a/b/c"])
def test_load_mistyped_path_never_tries_the_hub(
    typo: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datasets
    import huggingface_hub

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raiser(AssertionError("Hub tried")))
    monkeypatch.setattr(datasets, "load_dataset", _raiser(AssertionError("Hub tried")))
    with pytest.raises(LoadError, match="no such folder or file") as exc:
        spa_vl.load(source=typo)
    assert repr(typo) in str(exc.value)


def test_load_path_object_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such folder or file"):
        spa_vl.load(source=tmp_path / "ORG" / "NAME")


def test_load_upstream_offline(offline, tmp_path: Path) -> None:
    with pytest.raises(LoadError) as exc:
        spa_vl.load("malicious_use", cache_dir=str(tmp_path / "cache"))
    text = str(exc.value)
    assert f"tried to download {UPSTREAM_REPO}" in text and "unreachable" in text
    assert "HF_HUB_OFFLINE" in text


def test_load_upstream_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx2
    import huggingface_hub

    request = httpx2.Request("GET", f"https://huggingface.co/api/datasets/{UPSTREAM_REPO}/revision/main")
    exc = httpx2.ConnectError("[Errno 111] Connection refused", request=request)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raiser(exc))
    with pytest.raises(LoadError) as err:
        spa_vl.load()
    text = str(err.value)
    assert f"tried to download {UPSTREAM_REPO}" in text and "the Hugging Face Hub is unreachable" in text
    assert "Connection refused" in text


def test_load_pushed_release_offline(offline, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"tried to load acme/spa-vl from the Hub.*unreachable"):
        spa_vl.load("default", source="acme/spa-vl", cache_dir=str(tmp_path / "cache"))


def test_a_file_name_that_is_not_utf8_is_shown_escaped(failing_verify, cli) -> None:
    name = os.fsdecode(b"/data/\xff.parquet")
    run = cli("verify", failing_verify(PermissionError(errno.EACCES, "Permission denied", name)))
    run.assert_one_line_error(2, "/data/\\udcff.parquet: Permission denied")


def test_disk_full_while_writing_a_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    import spa_vl.sample

    def full(table, where, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(where))

    monkeypatch.setattr(spa_vl.sample.pq, "write_table", full)
    run = cli("sample", tmp_path / "out", "--layout", "hub", "--quiet")
    run.assert_one_line_error(2, ".parquet: no space left on the device")
    assert not (tmp_path / "out").exists()  # nothing half-written is left as the output
