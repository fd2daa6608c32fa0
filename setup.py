"""setuptools reads pyproject.toml; this file only adds the build step that
ships the install-time kernel cache (build_hooks/backend.py)."""
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "build_hooks"))
from backend import BuildPy  # noqa: E402

setup(cmdclass={"build_py": BuildPy})
