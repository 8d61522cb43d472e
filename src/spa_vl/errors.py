"""The errors every command maps to one line and one exit code.

``DataError`` (exit 1): the data failed a check. ``UsageError`` (exit 2): the command line or the
environment (paths, permissions, disk, network, a missing extra). ``spa_vl.cli.main`` catches
``SpaVLError`` and prints ``spa-vl CMD: error: MESSAGE``; a traceback only with ``--debug``.
``expected_failure`` also words the environment's own exceptions (``OSError`` with its file,
network failures, a missing optional module) the same way; anything else is a bug and keeps its
traceback. This module imports only the standard library, so any module may raise these.
"""

from __future__ import annotations

import errno
import os

HUB_UNREACHABLE = "the Hugging Face Hub is unreachable"
# Transport failures of every client huggingface_hub and datasets have used (requests, httpx,
# httpx2, aiohttp), matched by class name so that none of them needs importing here.
_NETWORK_NAMES = frozenset(
    {
        "ConnectionError",  # builtin and requests'
        "ConnectError",
        "ConnectTimeout",
        "NetworkError",
        "TransportError",
        "Timeout",
        "TimeoutException",
        "ReadTimeout",
        "ChunkedEncodingError",
        "OfflineModeIsEnabled",
        # huggingface_hub: not in the local cache and the Hub could not be (or may not be) asked
        "LocalEntryNotFoundError",
        "ClientConnectorError",
    }
)


class SpaVLError(Exception):
    """An expected failure, worded for the user. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class UsageError(SpaVLError):
    """A problem with the command line or the environment (exit code 2)."""

    exit_code = 2


class DataError(SpaVLError):
    """The data failed a check: an incomplete source, a tampered release (exit code 1)."""

    exit_code = 1


class NetworkError(UsageError):
    """The Hub (or another server) could not be reached; the message says what was fetched."""


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first (each once)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def is_network_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a lost or refused connection, a timeout, or
    huggingface_hub's offline mode (``HF_HUB_OFFLINE=1``)."""
    return any(any(c.__name__ in _NETWORK_NAMES for c in type(e).__mro__) for e in exception_chain(exc))


def _requested_url(exc: BaseException) -> str | None:
    for e in exception_chain(exc):
        request = getattr(e, "request", None)
        try:
            url = getattr(request, "url", None)
        except Exception:  # httpx raises RuntimeError when the request was never set
            url = None
        if url:
            return str(url)
    return None


def network_message(what: str, exc: BaseException) -> str:
    """``could not fetch WHAT: the Hub is unreachable (...)``, with the URL and cause when known."""
    url = _requested_url(exc)
    root = exception_chain(exc)[-1]
    cause = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
    where = f" ({url})" if url and url != what else ""
    return f"could not fetch {what}{where}: {HUB_UNREACHABLE}{offline}; {cause}"


def os_error_message(exc: OSError) -> str:
    """``FILE: reason`` for an OSError, naming both files of a rename or copy."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "the file system is read-only"
    if exc.filename is None:
        return reason if exc.strerror else str(exc) or reason
    names = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    return f"{names}: {reason}"


def expected_failure(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) when ``exc`` is an expected failure, else None (a bug).

    Expected: our own errors (``SpaVLError``), the environment's (``OSError``: missing files,
    permissions, a full or read-only disk; network failures), and a missing optional module.
    """
    if isinstance(exc, SpaVLError):
        return exc.exit_code, str(exc)
    if is_network_failure(exc):
        return UsageError.exit_code, network_message(_requested_url(exc) or "data from the Hub", exc)
    if isinstance(exc, OSError):
        return UsageError.exit_code, os_error_message(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name and not exc.name.startswith("spa_vl"):
        top = exc.name.split(".")[0]
        return UsageError.exit_code, (
            f"this needs the Python package {top!r}, which is not installed "
            "(see README.md for the extras: pip install 'spa-vl[...]')"
        )
    return None
