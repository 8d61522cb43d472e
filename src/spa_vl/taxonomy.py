"""The SPA-VL harm taxonomy: 6 domains, 15 categories, 53 subcategories.

Names are the exact strings of the data's ``class1``/``class2``/``class3`` columns, typos kept;
the order of each level is the ClassLabel order of released data and must never change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from spa_vl._resources import schema_path
from spa_vl.names import LEVELS

EXPECTED_SIZES = {"domain": 6, "category": 15, "subcategory": 53}
DEFAULT_CONFIG = "default"
_NODE_KEYS = ("name", "slug", "display", "parent")


class TaxonomyError(ValueError):
    """The taxonomy file is not a proper 6/15/53 tree."""


@dataclass(frozen=True)
class Node:
    level: str
    name: str
    slug: str
    display: str
    parent: str | None


@dataclass(frozen=True)
class Taxonomy:
    """The three-level tree with lookups by name, slug and config."""

    domains: tuple[Node, ...]
    categories: tuple[Node, ...]
    subcategories: tuple[Node, ...]
    _by_name: dict[tuple[str, str], Node] = field(repr=False, compare=False, default_factory=dict)
    # name -> ClassLabel id per level; filled once, looked up per row on hot paths
    _id_maps: dict[str, dict[str, int]] = field(repr=False, compare=False, default_factory=dict)
    _folders: dict[str, tuple[str, str, str] | None] = field(
        repr=False, compare=False, default_factory=dict
    )  # recover_from_path's cache: image folders repeat (53 of them in the real data)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Taxonomy:
        """Load and check a taxonomy JSON file; raise TaxonomyError naming every defect."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TaxonomyError(f"{path}: cannot read taxonomy: {exc}") from exc
        if not isinstance(raw, dict):
            raise TaxonomyError(f"{path}: not a taxonomy: the top level must be a JSON object")
        problems: list[str] = []
        levels: dict[str, tuple[Node, ...]] = {}
        for level, key in zip(LEVELS, ("domains", "categories", "subcategories"), strict=True):
            entries = raw.get(key)
            if not isinstance(entries, list):
                problems.append(f"{key}: missing or not a list")
                levels[level] = ()
                continue
            nodes = []
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    problems.append(f"{key}[{i}]: not an object")
                    continue
                keys = ("name", "slug", "display") if level == "domain" else _NODE_KEYS
                # A missing, empty or non-string value would break the lookups below.
                missing = [k for k in keys if not (isinstance(entry.get(k), str) and entry[k])]
                if missing:
                    problems.append(f"{key}[{i}]: missing {', '.join(missing)}")
                    continue
                nodes.append(Node(level, entry["name"], entry["slug"], entry["display"], entry.get("parent")))
            levels[level] = tuple(nodes)
        problems += _tree_problems(levels)
        if problems:
            raise TaxonomyError(f"{path}: not a 6/15/53 taxonomy tree:\n  " + "\n  ".join(problems))
        tax = cls(levels["domain"], levels["category"], levels["subcategory"])
        for node in (*tax.domains, *tax.categories, *tax.subcategories):
            tax._by_name[(node.level, node.name)] = node
        for level in LEVELS:
            tax._id_maps[level] = {name: i for i, name in enumerate(tax.names(level))}
        return tax

    # -- names and ids ------------------------------------------------------------------
    def names(self, level: str) -> list[str]:
        """Names of one level in ClassLabel order."""
        return [n.name for n in self._level(level)]

    def index(self, level: str, name: str | None) -> int:
        """ClassLabel id of ``name`` at ``level``; -1 for None."""
        if name is None:
            return -1
        return self._id_maps[level][name]

    def node(self, level: str, name: str) -> Node:
        try:
            return self._by_name[(level, name)]
        except KeyError:
            raise KeyError(f"unknown {level} {name!r}") from None

    def contains(self, level: str, name: str) -> bool:
        return (level, name) in self._by_name

    def parent(self, level: str, name: str) -> str | None:
        """Name of the parent of ``name`` (None for a domain)."""
        return self.node(level, name).parent

    def path(self, subcategory: str) -> tuple[str, str, str]:
        """(domain, category, subcategory) of a subcategory name."""
        category = self.node("subcategory", subcategory).parent
        assert category is not None
        domain = self.node("category", category).parent
        assert domain is not None
        return domain, category, subcategory

    def children(self, level: str, name: str) -> list[str]:
        child_level = LEVELS[LEVELS.index(level) + 1]
        return [n.name for n in self._level(child_level) if n.parent == name]

    def display(self, level: str, name: str) -> str:
        return self.node(level, name).display

    # -- configs ------------------------------------------------------------------------
    @property
    def config_names(self) -> list[str]:
        """``default`` followed by the six domain slugs."""
        return [DEFAULT_CONFIG, *(d.slug for d in self.domains)]

    def domain_of_config(self, config: str) -> str | None:
        """Domain name of a config slug; None for ``default``."""
        if config == DEFAULT_CONFIG:
            return None
        for d in self.domains:
            if d.slug == config:
                return d.name
        raise KeyError(f"unknown config {config!r}; configs: {', '.join(self.config_names)}")

    def config_of_domain(self, domain: str) -> str:
        return self.node("domain", domain).slug

    def recover_from_path(self, image_name: str | None) -> tuple[str, str, str] | None:
        """Labels from a ``class1/class2/class3/<n>.<ext>`` path, or None when it is not one."""
        if not image_name or not isinstance(image_name, str):
            return None
        folder = image_name.replace("\\", "/").strip("/").rpartition("/")[0]
        if folder in self._folders:
            return self._folders[folder]
        parts, found = folder.split("/"), None
        if len(parts) >= 3:
            d, c, s = parts[-3:]
            if (
                self.contains("subcategory", s)
                and self.parent("subcategory", s) == c
                and self.parent("category", c) == d
            ):
                found = (d, c, s)
        if len(self._folders) < 4096:  # bounded, whatever the input
            self._folders[folder] = found
        return found

    # -- helpers --------------------------------------------------------------------------
    def _level(self, level: str) -> tuple[Node, ...]:
        if level not in LEVELS:
            raise KeyError(f"unknown level {level!r}; levels: {', '.join(LEVELS)}")
        return {"domain": self.domains, "category": self.categories}.get(level, self.subcategories)


def _tree_problems(levels: dict[str, tuple[Node, ...]]) -> list[str]:
    problems = []
    for level, nodes in levels.items():
        if len(nodes) != EXPECTED_SIZES[level]:
            problems.append(f"{level}: {len(nodes)} entries, expected {EXPECTED_SIZES[level]}")
        for attr in ("name", "slug"):
            seen: set[str] = set()
            for n in nodes:
                value = getattr(n, attr)
                if value in seen:
                    problems.append(f"{level} {attr} {value!r} appears twice")
                seen.add(value)
    for child, parent in (("category", "domain"), ("subcategory", "category")):
        parents = {n.name for n in levels[parent]}
        for n in levels[child]:
            if n.parent not in parents:
                problems.append(f"{child} {n.name!r}: parent {n.parent!r} is not a {parent}")
        with_children = {n.parent for n in levels[child]}
        for p in parents - with_children:
            problems.append(f"{parent} {p!r} has no {child}")
    return problems


@cache
def load_taxonomy() -> Taxonomy:
    """The taxonomy shipped with the package (``schema/taxonomy.json``)."""
    return Taxonomy.from_file(schema_path("taxonomy.json"))


CONFIGS: tuple[str, ...] = tuple(load_taxonomy().config_names)
