"""The one thing pyproject.toml cannot say: the wheel carries the top-level ``schema/`` and
``dataset_card/`` folders as ``spa_vl/_resources/<name>/`` (``spa_vl._resources`` looks there in
an installed package, and at the top-level folders in a checkout).

Not through ``package-dir``: mapping a package to a folder outside ``src/`` turns setuptools'
default editable install from a plain ``.pth`` to ``src/`` into an import hook, and a release folder
``./spa_vl`` in the working directory (``spa-vl build --out spa_vl``, ``make demo``) wins over an
import hook: ``import spa_vl`` would give that folder as a namespace package
(tests/test_install.py). The sdist carries the folders through MANIFEST.in.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = ("schema", "dataset_card")


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's own folders
            return
        for name in RESOURCES:
            self.copy_tree(name, str(Path(self.build_lib, "spa_vl", "_resources", name)))


setup(cmdclass={"build_py": BuildPyWithResources})
