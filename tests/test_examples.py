"""Every example runs, with small settings, so none rots."""
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, argv):
    # Imported under a stable module name (runpy's changes per run), so that
    # an example's own cached @njit functions find their module when Numba
    # loads them from the cache in a later run.
    modname = "fastbp_example_" + Path(name).stem
    spec = importlib.util.spec_from_file_location(modname, EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module.main(argv)


def test_train_digits(capsys):
    accuracy = run_example("train_digits.py", ["--epochs", "15", "--hidden", "32"])
    assert accuracy >= 0.93
    out = capsys.readouterr().out
    assert "test accuracy" in out and "samples/s" in out


def test_train_inside_numba():
    mse = run_example("train_inside_numba.py", ["--steps", "30000"])
    assert mse < 0.01  # the curve's variance is about 0.1


def test_naive_vs_backprop(capsys):
    result = run_example("naive_vs_backprop.py", ["--networks", "3", "--max-naive", "3000"])
    # The naive gradient costs about 2W forward passes, far more than backprop.
    (w, fwd, bp, naive) = result["rows"][-1]
    assert w == 2383 and naive > 100 * bp
    assert 0.3 < naive / (2 * w * fwd) < 3
    assert "naive/backprop" in capsys.readouterr().out


@pytest.mark.parametrize("count", ["0", "1", "8"])
def test_naive_vs_backprop_refuses_a_slope_of_fewer_than_two_sizes(capsys, count):
    # (one network printed a backprop slope of -1.98 through a single point;
    # none raised from np.polyfit)
    with pytest.raises(SystemExit) as stop:
        run_example("naive_vs_backprop.py", ["--networks", count])
    assert stop.value.code == 2
    assert "--networks must be 2 to 7 (a slope needs two sizes)" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_main(name):
    text = (EXAMPLES / name).read_text()
    assert "def main(argv=None)" in text and '__name__ == "__main__"' in text
