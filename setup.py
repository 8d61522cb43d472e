"""Only what setup.cfg cannot say. Its package_dir maps the top-level ``schema/`` and
``dataset_card/`` folders to ``spa_vl._resources.*``, but ``packages = find:`` only looks
under ``src/`` and never lists them, so the wheel shipped without them (tests/test_wheel.py).
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages("src"),
        "spa_vl._resources.schema",
        "spa_vl._resources.dataset_card",
    ]
)
