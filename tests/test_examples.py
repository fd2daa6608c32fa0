"""Every example runs, with small settings, so none rots."""
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, argv):
    module = runpy.run_path(str(EXAMPLES / name))
    return module["main"](argv)


def test_train_digits(capsys):
    accuracy = run_example("train_digits.py", ["--epochs", "15", "--hidden", "32"])
    assert accuracy >= 0.93
    out = capsys.readouterr().out
    assert "test accuracy" in out and "samples/s" in out


def test_train_inside_numba():
    mse = run_example("train_inside_numba.py", ["--steps", "30000"])
    assert mse < 0.01  # the curve's variance is about 0.1


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_main(name):
    text = (EXAMPLES / name).read_text()
    assert "def main(argv=None)" in text and '__name__ == "__main__"' in text
