"""The card's figures drawn in a process of their own, for ``spa-vl build``.

Drawing the two figures costs about a second of Python (matplotlib's import and its text
layout), which in the build's own process would hold the GIL that reading and checking the rows
need. So the build starts this process when it starts: while the rows are read and written it
imports matplotlib; once every row has been handed to the writing threads it gets the label
counts (all the figures need) and draws, while the last parquet is written.

The process runs in a session of its own, so a Ctrl-C in the terminal reaches only the build,
which then ends it (``close``): it never outlives the build, and a failure in it is raised in
the build with its message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from spa_vl.release.stats import ReleaseStats

_WORKER = """
import sys
sys.path[:0] = {path!r}
from spa_vl.card.figure_process import serve
serve()
"""


class FigureProcess:
    """A process that draws the card's figures of one build (see the module's docstring)."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding spa_vl/
        # a file, not a pipe: nothing to drain while it runs (closed by close())
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER.format(path=[package_root])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,
        )

    def draw(self, folder: Path, stats: ReleaseStats) -> None:
        """Send the label counts: the process draws into ``folder`` (this call does not wait)."""
        labels = {
            level: {split: [[name, n] for name, n in counts.items()] for split, counts in per_split.items()}
            for level, per_split in stats.labels.items()
        }
        try:
            self._proc.stdin.write(json.dumps({"folder": str(folder), "labels": labels}).encode())
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # it died: result() says why

    def result(self, timeout: float = 600) -> list[str]:
        """Wait for the figures; their paths relative to the folder. RuntimeError with the
        process's last words if it failed."""
        out = self._proc.stdout.read()  # to the end: the process has drawn and exits
        self._proc.wait(timeout=timeout)
        if self._proc.returncode != 0:
            self._err.seek(0)
            lines = self._err.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(
                f"drawing the card's figures failed: {lines[-1] if lines else self._proc.returncode}"
            )
        return json.loads(out)

    def close(self) -> None:
        """End the process if it still runs (a failed or interrupted build)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._err):
            if stream is not None:
                stream.close()


def serve() -> None:
    """The process's side: read the counts from stdin, draw, print the paths written."""
    from spa_vl.card.plots import draw_figures  # matplotlib: imported while the build reads

    request = json.loads(sys.stdin.buffer.read())
    labels = {
        level: {split: Counter({name: n for name, n in pairs}) for split, pairs in per_split.items()}
        for level, per_split in request["labels"].items()
    }
    stats = ReleaseStats(rows={}, files={}, parquet_bytes={}, labels=labels)
    sys.stdout.write(json.dumps(draw_figures(request["folder"], stats)))
