"""Output paths, checked before any long work: never destroy what the tool did not write.

Every command that writes calls these first. An output may not be an input, lie inside an input
folder, or contain one; a file output may not be a folder; a folder output must be new, empty,
or something the tool wrote itself (``accept``). Text files are written aside and swapped in,
so an interrupted write leaves the old file as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from spa_vl.errors import UsageError


def resolved(path: str | os.PathLike) -> Path:
    """``path`` made absolute with symlinks followed, whether or not it exists."""
    return Path(path).expanduser().resolve()


def _related(out: Path, src: Path) -> str | None:
    if out == src:
        return "is"
    if src in out.parents:
        return "is inside"
    if out in src.parents:
        return "contains"
    return None


def _check_not_input(out: Path, shown: str, option: str, inputs: Iterable[str | os.PathLike]) -> None:
    for given in inputs:
        if given is None:
            continue
        how = _related(out, resolved(given))
        if how:
            raise UsageError(f"{option} {shown} {how} the input {given}: choose a path outside it")


def _check_writable_parent(out: Path, shown: str, option: str) -> None:
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {shown}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {shown}: cannot write in {parent} (permission denied)")


def check_output_file(
    path: str | os.PathLike, *, option: str, inputs: Iterable[str | os.PathLike] = ()
) -> Path:
    """Refuse ``path`` as a file output unless it is a new or regular file, writable, and not
    an input (nor inside an input folder). Returns the resolved path."""
    out = resolved(path)
    _check_not_input(out, str(path), option, inputs)
    if out.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    if out.exists() and not out.is_file():
        raise UsageError(f"{option} {path}: is not a regular file")
    if out.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write (permission denied)")
    _check_writable_parent(out, str(path), option)
    return out


def check_output_dir(
    path: str | os.PathLike,
    *,
    option: str,
    inputs: Iterable[str | os.PathLike] = (),
    accept: Callable[[Path], bool] | None = None,
    what: str = "folder this tool wrote",
) -> Path:
    """Refuse ``path`` as a folder output unless it is new, empty, or ``accept(path)`` says the
    tool wrote it (e.g. an existing release); never an input, inside one, or containing one."""
    out = resolved(path)
    _check_not_input(out, str(path), option, inputs)
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"{option} {path}: exists and is not a folder")
        if any(out.iterdir()) and not (accept and accept(out)):
            raise UsageError(
                f"{option} {path}: holds files that are not a {what}; give a new or empty folder"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: cannot write (permission denied)")
    _check_writable_parent(out, str(path), option)
    return out


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
