"""Shared helpers for the benchmarks: cached sample data and peak-memory measurement."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "_data"  # git-ignored


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def load() -> str:
    """The load average (1, 5, 15 min), to print beside every figure: the machine is shared."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def hub_sample(n_train: int, image_size: int | None = 256, texture: str = "gradient") -> Path:
    """The synthetic sample in the Hub layout with ``n_train`` train rows and JPEGs of
    ``image_size`` px, written once and reused. ``texture="photo"``: incompressible photo-like
    JPEGs, ~38 KB per row with ``image_size=None`` (as the real train split)."""
    size = "mixed" if image_size is None else f"{image_size}px"
    name = f"hub_{n_train}_{size}" + ("" if texture == "gradient" else f"_{texture}")
    out = DATA / name
    if not (out / "README.md").exists():
        # Written by a child: Linux keeps ru_maxrss across fork and exec, so a parent that had
        # held the sample's rows would hand its peak to every measured child after it.
        t = time.perf_counter()
        args = [str(n_train), str(image_size or 0), texture, str(out)]
        subprocess.run([sys.executable, __file__, "--write-sample", *args], check=True)
        print(f"  (wrote {out.name} in {time.perf_counter() - t:.0f} s)", file=sys.stderr)
    return out


def _write_sample(n_train: str, image_size: str, texture: str, out: str) -> None:
    from spa_vl.sample import SampleSpec, write_sample

    size = int(image_size) or None
    spec = SampleSpec(train=int(n_train), image_size=size, image_format="jpeg", texture=texture)
    write_sample(out, "hub", spec)


def measure(script: str, *args: str) -> dict:
    """Run ``script --_measure args...`` in a fresh process; it prints one JSON line with its
    figures, to which the child's peak RSS (MB) is added."""
    proc = subprocess.run(
        [sys.executable, script, "--_measure", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report_peak(result: dict) -> dict:
    import resource

    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    return result


# -- Xet-style content-defined chunking of file bytes ----------------------------------------------

XET_CHUNKS = (8 * 1024, 64 * 1024, 128 * 1024)  # min / average / max, as Xet's gear-hash chunker


def cdc_chunks(data: bytes) -> dict[bytes, int]:
    """The distinct chunks of ``data`` under FastCDC (gear hash) with Xet's sizes: digest -> size."""
    import hashlib

    from fastcdc import fastcdc

    view = memoryview(data)
    out: dict[bytes, int] = {}
    for c in fastcdc(data, *XET_CHUNKS):
        out[hashlib.blake2b(view[c.offset : c.offset + c.length], digest_size=16).digest()] = c.length
    return out


def new_bytes(old: list[Path], new: list[Path]) -> tuple[int, int]:
    """(bytes of ``new``'s distinct chunks that no file of ``old`` holds, bytes of all of
    ``new``'s distinct chunks): what an upload of ``new`` to a Xet store holding ``old`` sends."""
    seen: set[bytes] = set()
    for p in old:
        seen.update(cdc_chunks(p.read_bytes()))
    fresh: dict[bytes, int] = {}
    for p in new:
        fresh.update(cdc_chunks(p.read_bytes()))
    return sum(n for d, n in fresh.items() if d not in seen), sum(fresh.values())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write-sample"]:
        _write_sample(*sys.argv[2:6])
