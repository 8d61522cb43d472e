"""Checks of ``spa-vl train`` arguments made before any model, torch or data is loaded.

A wrong ``--data``, ``--config``, ``--split`` or ``--output-dir`` is reported in a second, not
after a multi-gigabyte model has loaded; a ``--model`` that is neither a model folder nor a Hub
repository that can be reached is one line, with no retries (and no network at all under
``HF_HUB_OFFLINE``). Only the standard library here; ``huggingface_hub`` (imported where used)
for a repo id and the card's YAML.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from spa_vl.errors import UsageError
from spa_vl.names import is_repo_id

_SPLIT = re.compile(r"^\s*(?P<name>[^\[\]+]+?)\s*(?:\[[^\]]*\])?\s*$")
MODEL_FILES = ("config.json", "adapter_config.json")  # a full model, or a LoRA output folder
RUN_FILES = ("run_card.json", "metrics.jsonl")
HUB_TIMEOUT_S = 10.0


def release_configs(data: str | os.PathLike) -> dict[str, list[str]]:
    """config -> split names of a release folder, from its card's ``configs:`` YAML.

    That list is what ``datasets.load_dataset(folder, config)`` reads, so a config or split
    missing from it cannot be loaded whatever files lie under ``data/``.
    """
    import yaml
    from huggingface_hub import metadata_load

    try:
        meta = metadata_load(Path(data) / "README.md")
    except (OSError, ValueError, yaml.YAMLError):  # unreadable or not YAML: no configs
        return {}
    entries = meta.get("configs") if isinstance(meta, dict) else None
    found: dict[str, list[str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not entry.get("config_name"):
            continue
        files = entry.get("data_files")
        if isinstance(files, list) and all(isinstance(f, dict) for f in files):
            splits = [str(f.get("split", "train")) for f in files]
        elif isinstance(files, dict):
            splits = [str(s) for s in files]
        else:  # a bare path or list of paths: datasets calls it `train`
            splits = ["train"]
        found[str(entry["config_name"])] = splits
    return found


def split_names(split: str) -> list[str]:
    """The split names in a ``datasets`` split expression (``train``, ``train[:1000]``, ``a+b``)."""
    names = []
    for part in split.split("+"):
        match = _SPLIT.match(part)
        if not match:
            raise UsageError(f"--split {split}: not a split name (e.g. train, or train[:1000])")
        names.append(match["name"])
    return names


def check_release(data: str | os.PathLike, config: str, split: str) -> None:
    """``--data`` is a release folder that has ``--config`` with every split ``--split`` names."""
    folder = Path(data).expanduser()
    if not folder.exists():
        raise UsageError(f"--data {data}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"--data {data}: is a file; give a release folder (spa-vl build)")
    configs = release_configs(folder)
    if not configs:
        raise UsageError(
            f"--data {data}: not a spa-vl release (no README.md with a `configs:` list); "
            "build one with `spa-vl build SRC --out DIR`"
        )
    if config not in configs:
        raise UsageError(f"--config {config}: not a config of {data} (it has: {', '.join(configs)})")
    for name in split_names(split):
        if name not in configs[config]:
            raise UsageError(
                f"--split {split}: config {config} of {data} has no {name} split "
                f"(it has: {', '.join(configs[config])})"
            )


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is the output of an earlier ``spa-vl train dpo`` (so a re-run may reuse it)."""
    return any((folder / name).is_file() for name in RUN_FILES) or any(folder.glob("checkpoint-*"))


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~"))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {
        "1",
        "ON",
        "YES",
        "TRUE",
    }


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in MODEL_FILES)


def check_model(model: str, option: str = "--model") -> None:
    """``model`` is a model folder, or a Hub repo id that is cached or answers one request.

    One request with a short timeout and no retries: transformers would otherwise retry
    an unreachable Hub for about a minute, with a traceback per try.
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{option} {model}: is a file; give a model folder or a Hub repo id")
        if not any((path / name).is_file() for name in MODEL_FILES):
            raise UsageError(f"{option} {model}: not a model folder (no config.json)")
        return
    if _looks_like_path(model):
        raise UsageError(f"{option} {model}: no such folder")
    if not is_repo_id(model, namespace=False):
        raise UsageError(f"{option} {model}: neither a folder nor a Hub repo id (ORG/NAME)")
    if _cached(model):
        return
    if _offline():
        raise UsageError(
            f"{option} {model}: no such folder, and not in the local Hub cache "
            "(HF_HUB_OFFLINE is set, so nothing is downloaded)"
        )
    _ask_hub(model, option)


def _ask_hub(repo_id: str, option: str) -> None:
    from huggingface_hub import constants, get_session
    from huggingface_hub.utils import build_hf_headers

    url = f"{constants.ENDPOINT}/api/models/{repo_id}"
    try:
        response = get_session().get(url, headers=build_hf_headers(), timeout=HUB_TIMEOUT_S)
    except Exception as exc:  # any transport failure: DNS, refused, timeout, proxy
        raise UsageError(
            f"{option} {repo_id}: no such folder, and the Hub ({constants.ENDPOINT}) cannot be "
            f"reached ({type(exc).__name__}); set HF_HUB_OFFLINE=1 to use the local cache only"
        ) from None
    if response.status_code in (401, 403, 404):
        raise UsageError(
            f"{option} {repo_id}: no such folder, and no such model on the Hub "
            "(or it is private or gated: log in with `hf auth login`)"
        )
    if response.status_code >= 400:
        raise UsageError(f"{option} {repo_id}: the Hub answered HTTP {response.status_code} for {url}")
