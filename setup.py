"""The package list, which pyproject.toml cannot give together with discovery.

Installed: every ``brainevent*`` package found in the tree (what
``[tool.setuptools.packages.find] include = ["brainevent*"]`` found), plus the
repository's ``benchmarks/`` folder as ``brainevent._benchmarks`` (mapped to
that folder by ``[tool.setuptools] package-dir`` in pyproject.toml), so that
``brainevent bench`` finds the scripts after a plain ``pip install .``.
Everything else about the package is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(packages=find_namespace_packages(include=['brainevent', 'brainevent.*'],
                                          exclude=['*.__pycache__'])
      + ['brainevent._benchmarks'])
