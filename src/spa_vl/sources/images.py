"""Image stores: where a source's relative image paths point (a folder or a zip read in place).

Paths are resolved defensively: absolute paths, ``..`` components and symlinks that leave the
root are refused, for folders and zip members alike. Only regular files are opened (a FIFO
would block the reader), and an archive that is not a zip, is cut short, or holds encrypted
members or members compressed with a method Python cannot read gives an ``ImageLoadError`` for
the rows that need it, never a traceback.
"""

from __future__ import annotations

import os
import posixpath
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

# Far above any SPA-VL image; a bigger file (or a zip member that inflates past it: a zip
# bomb) is refused before it is read into memory.
MAX_IMAGE_BYTES = 64 << 20
# What zipfile can inflate (bz2 and lzma only when Python was built with them).
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
ZIP_METHODS.update({zipfile.ZIP_BZIP2: "bzip2"} if zipfile.bz2 else {})
ZIP_METHODS.update({zipfile.ZIP_LZMA: "lzma"} if zipfile.lzma else {})
# Errors a damaged archive or member raises while read: never a traceback for the user.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    zlib.error,
    *((zipfile.lzma.LZMAError,) if zipfile.lzma else ()),
)


class ImageLoadError(Exception):
    """An image could not be read; ``code`` is the quarantine reason code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def safe_relpath(path: str) -> str:
    """Normalise a relative POSIX path, refusing any that would escape its root."""
    if not path or "\x00" in path:
        raise ImageLoadError("bad-image-path", "image path is empty or holds a NUL byte")
    p = path.replace("\\", "/")
    if p.startswith("/") or (len(p) > 1 and p[1] == ":"):
        raise ImageLoadError("path-escape", f"image path {path!r} is absolute")
    if ".." in PurePosixPath(p).parts:
        raise ImageLoadError("path-escape", f"image path {path!r} escapes the image root")
    return posixpath.normpath(p)


class FolderImages:
    """Images under a directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FolderImages({str(self.root)!r})"

    def read(self, relpath: str) -> bytes:
        rel = safe_relpath(relpath)
        full = (self.root / rel).resolve()
        # A symlink inside the root may still point outside it.
        if full != self.root and self.root not in full.parents:
            raise ImageLoadError("path-escape", f"image path {relpath!r} resolves outside {self.root}")
        try:
            info = full.stat()
            if not stat.S_ISREG(info.st_mode):  # a FIFO or a device: open() could block
                raise ImageLoadError("unreadable-image", f"image path {rel!r} is not a regular file")
            size = info.st_size
            if size > MAX_IMAGE_BYTES:
                raise ImageLoadError("image-too-large", _too_large(rel, size))
            return full.read_bytes()
        except FileNotFoundError:
            raise ImageLoadError("missing-image", f"image file {rel!r} not found under {self.root}") from None
        except OSError as exc:
            raise ImageLoadError("unreadable-image", f"cannot read image {rel!r}: {exc}") from None


class ZipImages:
    """Images inside a zip archive, read in place (never extracted)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        self._error: ImageLoadError | None = None  # the archive cannot be opened: say it once

    def __repr__(self) -> str:
        return f"ZipImages({str(self.path)!r})"

    def _open(self) -> zipfile.ZipFile:
        if self._error is not None:
            raise self._error
        if self._zip is None or self._pid != os.getpid():  # reopen after a fork
            try:
                mode = os.stat(self.path).st_mode
                if not stat.S_ISREG(mode):  # a FIFO would block zipfile's open()
                    raise OSError("not a regular file")
                self._zip = zipfile.ZipFile(self.path)
            except _ZIP_ERRORS as exc:
                self._error = ImageLoadError(
                    "unreadable-archive", f"{self.path.name} is not a readable zip archive: {exc}"
                )
                raise self._error from None
            self._pid = os.getpid()
            names = self._zip.namelist()
            # Archives often wrap everything in one top folder named like the archive.
            top = f"{self.path.stem}/"
            if names and all(n.startswith(top) for n in names):
                self._prefix = top
        return self._zip

    def read(self, relpath: str) -> bytes:
        rel = safe_relpath(relpath)
        zf = self._open()
        for name in (rel, self._prefix + rel):
            try:
                info = zf.getinfo(name)
            except KeyError:
                continue
            if info.file_size > MAX_IMAGE_BYTES:
                raise ImageLoadError("image-too-large", _too_large(name, info.file_size))
            where = f"{self.path.name}:{name}"
            if info.flag_bits & 0x1:
                raise ImageLoadError("unreadable-image", f"{where}: the member is encrypted")
            if info.compress_type not in ZIP_METHODS:
                raise ImageLoadError(
                    "unreadable-image",
                    f"{where}: compressed with method {info.compress_type}, which cannot be read "
                    f"(readable: {', '.join(ZIP_METHODS.values())})",
                )
            try:
                return zf.read(info)
            except _ZIP_ERRORS as exc:
                raise ImageLoadError("unreadable-image", f"{where}: {exc}") from None
        raise ImageLoadError("missing-image", f"image {rel!r} is not a member of {self.path}")


def _too_large(name: str, size: int) -> str:
    return f"image {name!r} is {size:,} bytes, over the limit of {MAX_IMAGE_BYTES:,}"


def open_image_store(root: str | Path) -> FolderImages | ZipImages:
    root = Path(root)
    return ZipImages(root) if root.suffix.lower() == ".zip" else FolderImages(root)
