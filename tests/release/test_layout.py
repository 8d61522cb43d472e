"""``spa_vl.release.layout``: the one module that names a release's folders and shard files.

The layout contract (docs/CONTRACTS.md, v2) is typed here rather than taken from the code, and the
package's source is searched for shard names spelt anywhere else.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import spa_vl
from features_contract import DOMAIN_CONFIGS
from spa_vl.release import layout
from spa_vl.release.layout import ReleaseLayout

SRC = Path(spa_vl.__file__).parent
DOMAIN_FOLDERS = list(DOMAIN_CONFIGS)

# The authors' raw Hub layout (``data/train-0000K-of-00008.parquet``, ``test/harm-…``) is an input
# of ours, not the release: the sample writes it and its reader reads it.
RAW_HUB_LAYOUT = {"sample.py", "sources/hub_parquet.py"}
# What names a shard file: the ``-of-`` numbering, a zero-padded index, v1's copy folder.
SHARD_NAMING = re.compile(r"[\d}]-of-[\d{]|NNNNN-of|:05d\}|data/default")


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals and f-strings (format specs spelt out), docstrings left out."""
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for v in node.values:
                if isinstance(v, ast.Constant):
                    text += str(v.value)
                elif isinstance(v, ast.FormattedValue):
                    spec = ast.unparse(v.format_spec)[2:-1] if v.format_spec else ""
                    text += "{" + ast.unparse(v.value) + (f":{spec}" if spec else "") + "}"
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append((node.lineno, node.value))
    return out


def test_only_the_layout_module_names_shard_files() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "release/layout.py" or rel in RAW_HUB_LAYOUT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{rel}:{line}: {text!r}" for line, text in _strings(tree) if SHARD_NAMING.search(text)]
        for node in ast.walk(tree):  # globbing a release's data folders: the layout lists them
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("glob", "rglob")
                and node.args
                and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))
                and "data/" in ast.unparse(node.args[0])
            ):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert found == [], "shard files named outside spa_vl.release.layout:\n" + "\n".join(found)


def test_one_is_release() -> None:
    defined = [
        f"{p.relative_to(SRC)}"
        for p in sorted(SRC.rglob("*.py"))
        if re.search(r"^def is_release\(", p.read_text(encoding="utf-8"), re.M)
    ]
    assert defined == ["release/layout.py"]


def test_names() -> None:
    assert layout.shard_name("train", 3, 8) == "train-00003-of-00008.parquet"
    assert layout.shard_split("validation-00000-of-00001.parquet") == "validation"
    assert layout.shard_split("harm-00000-of-00001.parquet") is None  # not a release split
    assert layout.shard_split("train-00000-of-00001.parquet.bak") is None
    assert layout.shard_index(Path("x/train-00002-of-00005.jsonl")) == ("train", 2, 5)
    assert layout.data_folders() == (*DOMAIN_FOLDERS, "unlabeled")
    assert layout.folder_of_domain(-1) == "unlabeled" and layout.folder_of_domain(3) == "malicious_use"
    assert layout.parse_data_path("data/misinformation/test-00000-of-00001.parquet") == (
        "misinformation",
        "test",
    )
    assert layout.parse_data_path("data/misinformation/notes.txt") is None


def test_card_data_files_per_config() -> None:
    folders = {"train": ["malicious_use", "unlabeled"], "test": ["malicious_use"]}
    assert layout.config_data_files("default", folders) == [
        {"split": "train", "path": ["data/malicious_use/train-*", "data/unlabeled/train-*"]},
        {"split": "test", "path": "data/malicious_use/test-*"},
    ]
    assert layout.config_file_glob("default") == "data/*/*.parquet"
    assert layout.config_file_glob("misinformation") == "data/misinformation/*.parquet"


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def test_v2_folders_per_config_in_reading_order(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "data/unlabeled/train-00000-of-00001.parquet",
        "data/socioeconomic/train-00001-of-00002.parquet",
        "data/socioeconomic/train-00000-of-00002.parquet",
        "data/misinformation/train-00000-of-00001.parquet",
        "data/misinformation/test-00000-of-00001.parquet",
        "data/misinformation/notes.txt",
        "data/stray.parquet",
        "data/.hidden",
    )
    found = ReleaseLayout.of(tmp_path)
    assert found.version == 2
    rel = [p.relative_to(tmp_path).as_posix() for p in found.files("default")]
    assert rel == [
        "data/misinformation/train-00000-of-00001.parquet",
        "data/socioeconomic/train-00000-of-00002.parquet",
        "data/socioeconomic/train-00001-of-00002.parquet",
        "data/unlabeled/train-00000-of-00001.parquet",
        "data/misinformation/test-00000-of-00001.parquet",
    ]
    assert [p.name for p in found.files("socioeconomic", "train")] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    assert set(found.data_files()) == {"default", "misinformation", "socioeconomic"}
    assert found.split_folders("default") == {
        "train": ["misinformation", "socioeconomic", "unlabeled"],
        "test": ["misinformation"],
    }
    assert [p.relative_to(tmp_path).as_posix() for p in found.strays()] == [
        "data/misinformation/notes.txt",
        "data/stray.parquet",
    ]


def test_v1_releases_are_still_read(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "data/default/train-00000-of-00001.parquet",
        "data/malicious_use/train-00000-of-00001.parquet",
    )
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"format": "spa-vl-release/1", "files": []}))
    found = ReleaseLayout.of(tmp_path)
    assert found.version == 1
    assert [p.parent.name for p in found.files("default")] == ["default"]  # not the domain copies
    assert [p.parent.name for p in found.files("malicious_use")] == ["malicious_use"]
    assert layout.is_release(tmp_path) and layout.has_release_manifest(tmp_path)


@pytest.mark.parametrize(
    ("files", "manifest", "expected"),
    [
        ((), None, False),
        (("data/misinformation/train-00000-of-00001.parquet",), None, True),  # manifest lost
        ((), {"format": "spa-vl-release/2", "files": []}, True),
        ((), "not json", True),  # a damaged release is still told as one (its readers say why)
        (("data/train-00000-of-00008.parquet",), None, False),  # the raw Hub layout
    ],
)
def test_is_release(tmp_path: Path, files, manifest, expected) -> None:
    _touch(tmp_path, *files)
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        (tmp_path / "MANIFEST.json").write_text(text)
    assert layout.is_release(tmp_path) is expected
    assert layout.has_release_manifest(tmp_path) is isinstance(manifest, dict)
