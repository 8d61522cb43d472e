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


def hub_sample(n_train: int, image_size: int = 256) -> Path:
    """The synthetic sample in the Hub layout with ``n_train`` train rows and JPEGs of
    ``image_size`` px, written once and reused."""
    out = DATA / f"hub_{n_train}_{image_size}px"
    if not (out / "README.md").exists():
        from spa_vl.sample import SampleSpec, write_sample

        t = time.perf_counter()
        spec = SampleSpec(train=n_train, image_size=image_size, image_format="jpeg")
        write_sample(out, "hub", spec)
        print(f"  (wrote {out.name} in {time.perf_counter() - t:.0f} s)", file=sys.stderr)
    return out


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
