"""How a Hub call failed, and whether to try it again: HTTP status, transport failures of every
client generation, ``Retry-After``, and the backoff of ``spa_vl.release.hub``'s pushes."""

from __future__ import annotations

from dataclasses import dataclass

from spa_vl.errors import exception_chain

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Transport failures differ by client generation (requests, httpx, httpx2); match by class name
# so every supported huggingface_hub version is covered without importing all three.
_TRANSPORT_NAMES = frozenset({"TransportError", "ConnectionError", "Timeout", "ChunkedEncodingError"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wanted = self.base_delay * 2 ** (attempt - 1) if retry_after is None else retry_after
        return min(self.max_delay, wanted)


def http_status(exc: BaseException) -> int | None:
    for e in exception_chain(exc):
        response = getattr(e, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def offline(exc: BaseException) -> bool:
    return any(
        any(c.__name__ == "OfflineModeIsEnabled" for c in type(e).__mro__) for e in exception_chain(exc)
    )


def transient(exc: BaseException) -> bool:
    code = http_status(exc)
    if code is not None:
        return code in RETRY_STATUS
    return any(
        isinstance(e, ConnectionError) or any(c.__name__ in _TRANSPORT_NAMES for c in type(e).__mro__)
        for e in exception_chain(exc)
    )


def retry_after(exc: BaseException) -> float | None:
    for e in exception_chain(exc):
        headers = getattr(getattr(e, "response", None), "headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        if value and str(value).isdigit():
            return float(value)
    return None


def reason(exc: BaseException) -> str:
    code = http_status(exc)
    if code is not None:
        return f"HTTP {code}"
    root = exception_chain(exc)[-1]
    return f"{type(root).__name__}: {root}" if str(root) else type(root).__name__


def scrub(text: str, token: str | None) -> str:
    """Never let the token reach the terminal, a log or an error message."""
    return text.replace(token, "hf_***") if token else text


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
