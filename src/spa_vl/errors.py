"""The errors every command maps to one line and one exit code.

``DataError`` (exit 1): the data failed a check. ``UsageError`` (exit 2): the command line or the
environment (paths, permissions, disk, network, a missing extra). ``spa_vl.cli.main`` catches
``SpaVLError`` and prints ``spa-vl CMD: error: MESSAGE``; a traceback only with ``--debug``.
This module imports nothing, so any module may raise these.
"""

from __future__ import annotations


class SpaVLError(Exception):
    """An expected failure, worded for the user. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class UsageError(SpaVLError):
    """A problem with the command line or the environment (exit code 2)."""

    exit_code = 2


class DataError(SpaVLError):
    """The data failed a check: an incomplete source, a tampered release (exit code 1)."""

    exit_code = 1
