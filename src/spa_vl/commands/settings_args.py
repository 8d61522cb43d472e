"""Command-line options generated from a settings dataclass: one loop over its fields.

The idea of ``transformers.HfArgumentParser``, in a few lines of our own: the audit CLI must work
without the ``train`` extra (transformers), and ``spa-vl train --help`` without torch. Each field
becomes one option:

- name: ``max_matches`` -> ``--max-matches``, unless ``metadata["option"]`` gives another;
- type, from the annotation: ``int``, ``float``, ``str`` (``X | None``: the option may be left
  unset); ``bool`` -> ``--x`` when it defaults to False, ``--x/--no-x`` when it defaults to True
  or None; ``tuple[str, ...]`` -> one comma-separated value (``--scopes eval,leak``);
- help: ``metadata["help"]`` (the option's text, so a True-by-default flag's help says what
  ``--no-x`` does too), followed by the dataclass default;
- ``metadata["choices"]`` and ``metadata["metavar"]`` go to argparse as they are;
- a field without a default is a required option.

Values are checked by the dataclass itself (``__post_init__``) in ``settings_from_args``, so a bad
value is a usage error (exit 2) carrying the dataclass's own message, for the CLI and the API
alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from spa_vl.errors import UsageError

T = TypeVar("T")
# a parser or one of its argument groups (argparse's class for those is private)
Adder = argparse.ArgumentParser | argparse._ArgumentGroup


def option_name(f: dataclasses.Field) -> str:
    """The option of a settings field: ``metadata["option"]`` or ``--field-name``."""
    return f.metadata.get("option", "--" + f.name.replace("_", "-"))


def add_settings_arguments(
    parser: Adder, cls: type, *, names: Iterable[str] | None = None, skip: Iterable[str] = ()
) -> list[str]:
    """Add one option per field of the dataclass ``cls`` to ``parser`` (or an argument group):
    the fields in ``names``, in that order, or else every field but those in ``skip``, in the
    dataclass's order. Returns the names of the fields added."""
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)  # the annotations are strings (`from __future__`)
    skipped = set(skip)
    chosen = list(names) if names is not None else [n for n in by_name if n not in skipped]
    for name in chosen:
        parser.add_argument(option_name(by_name[name]), **_argument(by_name[name], hints[name], cls))
    return chosen


def settings_from_args(cls: type[T], args: argparse.Namespace, **override: Any) -> T:
    """An instance of ``cls`` from parsed options; ``override`` wins, and a field with no option
    keeps its default. A value the dataclass refuses (ValueError) is a ``UsageError``."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(override)
    try:
        return cls(**values)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``; the dataclass checks the items."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _argument(f: dataclasses.Field, hint: Any, cls: type) -> dict[str, Any]:
    """``add_argument`` keywords for one field."""
    base = _without_none(hint)
    default = _default(f)
    kw: dict[str, Any] = {"dest": f.name}
    kw.update({k: f.metadata[k] for k in ("choices", "metavar") if k in f.metadata})
    if default is dataclasses.MISSING:
        kw["required"] = True
    else:
        kw["default"] = default
    if base is bool:  # off by default: --x; on or unset (None) by default: --x/--no-x
        kw["action"] = "store_true" if default is False else argparse.BooleanOptionalAction
    elif typing.get_origin(base) is tuple and typing.get_args(base)[1:] == (Ellipsis,):
        kw["type"] = comma_list
    elif base in (int, float, str):
        kw["type"] = base
    else:
        raise TypeError(f"{cls.__name__}.{f.name}: no option for a field of type {hint}")
    if "help" in f.metadata:
        kw["help"] = _help(f.metadata["help"], default)
    return kw


def _without_none(hint: Any) -> Any:
    """``X | None`` -> ``X`` (None is then the default: the option may be left unset)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _help(text: str, default: Any) -> str:
    """The help with the default after it, ``%`` escaped for argparse's formatting. No default
    is shown for a required option, an unset one (None) or a flag that is off by default."""
    if default is True:
        text += " (default: on)"
    elif not any(default is v for v in (None, False, dataclasses.MISSING)):
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        text += f" (default: {shown})"
    return text.replace("%", "%%")
