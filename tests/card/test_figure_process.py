"""The build draws the card's figures in a process of its own (``spa_vl.card.figure_process``):
the same bytes as drawing them in the build's process, a failure there is the build's failure
with its reason, and the process never outlives the build."""

from __future__ import annotations

from pathlib import Path

import pytest

import spa_vl.card.figure_process as figure_process
from spa_vl.card.render import render_figures
from spa_vl.card.stats import read_stats
from spa_vl.release.build import build_release
from spa_vl.release.layout import CARD_IMAGES as IMAGES


def test_figures_of_the_build_are_those_drawn_in_process(card_release: Path, tmp_path: Path) -> None:
    render_figures(tmp_path, read_stats(card_release))
    for name in (IMAGES["sunburst"], IMAGES["splits"]):
        assert (card_release / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_a_failure_in_the_process_is_raised_with_its_reason(card_release: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = figure_process.FigureProcess()
    try:
        proc.draw(blocker, read_stats(card_release))  # images/ cannot be made inside a file
        with pytest.raises(
            RuntimeError, match=r"drawing the card's figures failed: .*(NotADirectory|FileExists)"
        ):
            proc.result()
    finally:
        proc.close()


def test_the_process_ends_with_an_interrupted_build(
    sample_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[figure_process.FigureProcess] = []
    real_init = figure_process.FigureProcess.__init__

    def init(self: figure_process.FigureProcess) -> None:
        real_init(self)
        started.append(self)

    def interrupt(folder: Path, stats: object) -> list[str]:
        raise KeyboardInterrupt

    import spa_vl.card.render as render

    monkeypatch.setattr(figure_process.FigureProcess, "__init__", init)
    monkeypatch.setattr(render, "render_build_card", interrupt)
    with pytest.raises(KeyboardInterrupt):
        build_release(sample_dirs["hub"], tmp_path / "release")
    assert len(started) == 1
    assert started[0]._proc.returncode is not None  # ended and reaped, not left running
    assert not (tmp_path / "release").exists()


def test_close_ends_a_process_that_was_never_given_work() -> None:
    proc = figure_process.FigureProcess()
    proc.close()
    assert proc._proc.returncode is not None
