"""Write a folder aside and swap it in whole: the output contract of ``build`` and ``sample``.

A command that writes a folder ``OUT`` writes into ``.OUT.staging-<pid>`` beside it (the same
filesystem, so the swap is a rename), checks it, and only then swaps it in. On Linux the swap is
one ``renameat2(RENAME_EXCHANGE)``: there is no moment without a complete ``OUT``. Elsewhere it
is two renames (the old folder to ``.OUT.old-<pid>``, the new one into place), and the next run
restores the old folder if a crash fell between them.

A lock file ``.OUT.lock`` (``flock``, released by the kernel even on SIGKILL) keeps a second
writer out while one runs. Whoever holds the lock owns every ``.OUT.staging-*`` and
``.OUT.old-*`` folder, so leftovers of a killed run are cleared before the next one starts.
Interrupted or failed runs leave ``OUT`` exactly as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from spa_vl.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, the rest still holds
    fcntl = None  # type: ignore[assignment]

STAGING = "staging"
OLD = "old"


def side_path(out: Path, kind: str, pid: int | None = None) -> Path:
    """``.OUT.<kind>-<pid>`` beside ``out`` (hidden, named after it)."""
    return out.parent / f".{out.name}.{kind}-{os.getpid() if pid is None else pid}"


def _side_folders(out: Path, kind: str) -> list[Path]:
    # Not a glob: OUT's own name may hold glob characters.
    prefix = f".{out.name}.{kind}-"
    if not out.parent.is_dir():
        return []
    return sorted(
        p for p in out.parent.iterdir() if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_not_current_folder(out: Path, shown: str | os.PathLike, option: str) -> None:
    """Refuse a folder output that is the current folder or contains it: the swap replaces the
    folder whole, and a shell standing in it would be left in the removed one."""
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current folder was removed: nothing to protect there
        return
    if out == here or out in here.parents:
        raise UsageError(
            f"{option} {shown}: is the current folder or contains it; it would be replaced whole: "
            "give a new folder's path, such as ./spa_vl"
        )


class OutputLock:
    """An exclusive, non-blocking lock on ``.OUT.lock``; a second holder gets a UsageError."""

    def __init__(self, out: Path, command: str = "build", option: str = "--out") -> None:
        self.out = out
        self.path = out.parent / f".{out.name}.lock"
        self.command, self.option = command, option
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise UsageError(
                    f"{self.option} {self.out}: another spa-vl {self.command} is writing it "
                    f"(pid {holder}, lock {self.path}); wait for it to finish"
                ) from None
            # The holder before us may have unlinked the file after we opened it: then we
            # hold a lock on a file nobody else will open. Retry on the file at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink while still holding the lock (see acquire): no lock file is left behind.
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # the filesystem cannot exchange: two renames instead
    raise OSError(err, os.strerror(err), str(b))


def recover(out: Path) -> list[str]:
    """Clear what a killed run left beside ``out`` (call with the lock held).

    A crash between the two renames of a swap leaves ``.OUT.old-*`` and no ``OUT``: the old
    folder is put back. Staging folders are removed. Returns what was done, for a message."""
    done = []
    for old in _side_folders(out, OLD):
        if not out.exists() and not out.is_symlink():
            os.rename(old, out)
            done.append(f"restored {out} from {old.name} (a swap was interrupted)")
        else:
            _remove(old)
            done.append(f"removed {old.name}")
    for stale in _side_folders(out, STAGING):
        if stale != side_path(out, STAGING):
            _remove(stale)
            done.append(f"removed {stale.name}")
    return done


def swap_in(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out``; the folder that was there is removed once replaced."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        _remove(staging)  # it now holds the old folder
        return
    old = side_path(out, OLD)
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(old, out)
        raise
    _remove(old)


class StagedFolder:
    """``with StagedFolder(out) as stage:`` write into ``stage.path``, then ``stage.commit()``.

    Leaving the block without ``commit`` (an error, Ctrl-C) removes the staging folder and
    leaves ``out`` as it was. ``out`` must already have passed the output checks."""

    def __init__(self, out: str | os.PathLike, command: str = "build", option: str = "--out") -> None:
        self.out = Path(out)
        self.path = side_path(self.out, STAGING)
        self.lock = OutputLock(self.out, command, option)
        self.recovered: list[str] = []
        self.committed = False

    def __enter__(self) -> StagedFolder:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            self.recovered = recover(self.out)
            _remove(self.path)  # a dead run that had our pid
            self.path.mkdir()
        except BaseException:
            self.lock.release()
            raise
        return self

    def commit(self, check: Callable[[Path], None] | None = None) -> Path:
        """Run ``check(staging)`` (raise to refuse), then swap the staging folder in."""
        if check is not None:
            check(self.path)
        swap_in(self.path, self.out)
        self.committed = True
        return self.out

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self.committed:
                _remove(self.path)
        finally:
            self.lock.release()


# -- single files ------------------------------------------------------------------------------


def aside_file(path: Path) -> Path:
    """Where to write ``path`` before it is swapped in: ``.NAME.<pid>.tmp`` beside it. Stale
    ones of dead processes are removed first."""
    prefix, suffix = f".{path.name}.", ".tmp"
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            middle = p.name[len(prefix) : -len(suffix)]
            ours = p.name.startswith(prefix) and p.name.endswith(suffix) and middle.isdigit()
            if ours and int(middle) != os.getpid() and not _pid_alive(int(middle)):
                _remove(p)
    return path.parent / f"{prefix}{os.getpid()}{suffix}"


@contextlib.contextmanager
def terminate_as_interrupt():
    """While inside, SIGTERM unwinds like Ctrl-C (KeyboardInterrupt), so staging folders and
    aside files are cleaned up instead of left behind (``kill PID`` as well as Ctrl-C)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
