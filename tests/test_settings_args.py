"""The ``audit`` and ``train`` options are made from the settings dataclasses: every field has an
option with help, the defaults parse back to the dataclass defaults, and values round-trip."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

import spa_vl.audit.settings as audit_settings_module
from spa_vl.audit.settings import AuditSettings
from spa_vl.cli import build_parser, main
from spa_vl.commands import audit as audit_command
from spa_vl.commands.settings_args import add_settings_arguments, option_name, settings_from_args
from spa_vl.errors import UsageError
from spa_vl.train.settings import DPOSettings, GenerateSettings

AUDIT = ["audit", "SRC", "--out", "r.json"]
DPO = ["train", "dpo", "--model", "m", "--data", "d", "--output-dir", "o"]
GENERATE = ["train", "generate", "--model", "m", "--data", "d", "--out", "a.jsonl"]
# fields with no option of their own: the OCR cache lies beside --out
NO_OPTION = {AuditSettings: {"ocr_cache"}, DPOSettings: set(), GenerateSettings: set()}


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _subparser(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize(
    "cls, command", [(AuditSettings, ["audit"]), (DPOSettings, ["train", "dpo"]),
                     (GenerateSettings, ["train", "generate"])]
)  # fmt: skip
def test_every_settings_field_has_an_option_with_help(cls: type, command: list[str]) -> None:
    by_dest = {a.dest: a for a in _subparser(*command)._actions}
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"
        if f.name in NO_OPTION[cls]:
            assert f.name not in by_dest
            continue
        assert f.name in by_dest, f"{cls.__name__}.{f.name} has no option in spa-vl {' '.join(command)}"
        assert by_dest[f.name].help, f"{option_name(f)} has no help"
        assert option_name(f) in by_dest[f.name].option_strings


def test_audit_defaults_parse_back_to_the_settings_defaults() -> None:
    args = _parse(AUDIT)
    assert audit_command.audit_settings(args) == AuditSettings()
    assert settings_from_args(AuditSettings, args, ocr=False) == AuditSettings()


@pytest.mark.parametrize(
    "argv, expected", [(DPO, DPOSettings("m", "d", "o")), (GENERATE, GenerateSettings("m", "d", "a.jsonl"))]
)
def test_train_defaults_parse_back_to_the_settings_defaults(argv: list[str], expected: object) -> None:
    assert settings_from_args(type(expected), _parse(argv)) == expected


def test_audit_options_reach_the_settings() -> None:
    argv = [*AUDIT, "--scopes", "eval, leak", "--no-near", "--no-crops", "--flips", "--images",
            "--answers", "--image-rule", "any", "--max-matches", "3", "--near-threshold", "0.5",
            "--max-image-neighbours", "-1", "--ocr-gate", "0", "--ocr-min-chars", "8", "--quiet"]  # fmt: skip
    s = audit_command.audit_settings(_parse(argv))
    assert s == AuditSettings(scopes=("eval", "leak"), near=False, crops=False, flips=True, images=True,
                              answers=True, image_rule="any", max_matches=3, near_threshold=0.5,
                              max_image_neighbours=-1, ocr_gate=0.0, ocr_min_chars=8)  # fmt: skip
    # the pairs' positive halves, and the last of a pair wins
    s = audit_command.audit_settings(_parse([*AUDIT, "--no-near", "--near", "--crops"]))
    assert s.near and s.crops


def test_train_options_reach_the_settings() -> None:
    argv = [*DPO, "--split", "validation", "--beta", "0.2", "--no-bf16", "--no-gradient-checkpointing",
            "--lora", "--limit", "4", "--save-steps", "5", "--lr-scheduler", "linear", "--quiet"]  # fmt: skip
    s = settings_from_args(DPOSettings, _parse(argv))
    assert s == DPOSettings("m", "d", "o", split="validation", beta=0.2, bf16=False,
                            gradient_checkpointing=False, lora=True, limit=4, save_steps=5,
                            lr_scheduler="linear", quiet=True)  # fmt: skip
    assert settings_from_args(DPOSettings, _parse([*DPO, "--bf16"])).bf16 is True


def test_audit_option_names_defaults_and_choices_are_kept() -> None:
    by_option = {o: a for a in _subparser("audit")._actions for o in a.option_strings}
    for option in ("--ngram-size", "--near-threshold", "--max-word-edits", "--edit-fraction",
                   "--containment-threshold", "--min-containment-tokens", "--min-tokens",
                   "--phash-threshold", "--dhash-threshold", "--image-rule", "--max-image-neighbours",
                   "--max-matches", "--images", "--flips", "--no-crops", "--answers", "--ocr",
                   "--no-ocr", "--scopes", "--no-near"):  # fmt: skip
        assert option in by_option, option
    assert by_option["--image-rule"].choices == ("both", "any")
    assert by_option["--ocr"].default is None  # decided per audit (_ocr_wanted)


def test_a_refused_value_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="unknown scope"):
        audit_command.audit_settings(_parse([*AUDIT, "--scopes", "eval,everything"]))
    (tmp_path / "src").mkdir()
    argv = [
        "audit",
        str(tmp_path / "src"),
        "--no-near",
        "--ngram-size",
        "0",
        "--out",
        str(tmp_path / "r.json"),
    ]
    assert main(argv) == 2
    assert "ngram_size must be at least 1" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class _Example:
    name: str = dataclasses.field(metadata={"help": "required: no default"})
    top_k: int = dataclasses.field(default=3, metadata={"help": "keep 100% of k", "option": "--k"})
    ratio: float | None = dataclasses.field(default=None, metadata={"help": "unset: automatic"})
    mode: str = dataclasses.field(default="a", metadata={"help": "mode", "choices": ("a", "b")})
    tags: tuple[str, ...] = dataclasses.field(default=("x", "y"), metadata={"help": "tags"})
    off: bool = dataclasses.field(default=False, metadata={"help": "a flag"})
    on: bool = dataclasses.field(default=True, metadata={"help": "a flag on by default"})
    auto: bool | None = dataclasses.field(default=None, metadata={"help": "on, off or automatic"})


def test_the_helper_on_each_kind_of_field(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="x")
    assert add_settings_arguments(parser, _Example, skip=("auto",))[-1] == "on"
    assert settings_from_args(_Example, parser.parse_args(["--name", "n"])) == _Example("n")
    args = parser.parse_args(["--name", "n", "--k", "5", "--ratio", "0.5", "--mode", "b",
                              "--tags", "p,,q ", "--off", "--no-on"])  # fmt: skip
    assert settings_from_args(_Example, args) == _Example("n", 5, 0.5, "b", ("p", "q"), True, False)
    parser.print_help()
    text = " ".join(capsys.readouterr().out.split())
    assert "keep 100% of k (default: 3)" in text and "tags (default: x,y)" in text
    assert "a flag on by default (default: on)" in text and "unset: automatic" in text
    for bad in (["--mode", "c"], []):  # a choice not offered; the required option missing
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    capsys.readouterr()
    only = argparse.ArgumentParser()
    assert add_settings_arguments(only, _Example, names=("auto", "off")) == ["auto", "off"]
    assert only.parse_args(["--no-auto"]).auto is False and only.parse_args([]).auto is None


def test_a_field_type_with_no_option_kind_is_refused() -> None:
    @dataclasses.dataclass
    class Odd:
        mapping: dict = dataclasses.field(default_factory=dict, metadata={"help": "?"})

    with pytest.raises(TypeError, match=r"Odd\.mapping"):
        add_settings_arguments(argparse.ArgumentParser(), Odd)


def test_audit_settings_import_nothing_of_the_audit_package() -> None:
    """Every import, at the top, inside functions and under TYPE_CHECKING: no cycle with text.py."""
    tree = ast.parse(Path(audit_settings_module.__file__).read_text(encoding="utf-8"))
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    # spa_vl.names imports nothing of the package: the one home of the scope names
    assert not [m for m in imported if m.startswith("spa_vl") and m != "spa_vl.names"], imported
