"""asv_bench/suite_compiles.py: the pytest plugin that records the
specialisations a run compiles, and its report, on a run of its own."""
import os
import subprocess
import sys
import textwrap

import pytest

BENCH = os.path.join(os.path.dirname(__file__), os.pardir, "asv_bench")


def test_the_plugin_records_each_outer_specialisation_once_and_the_report_sums_them(tmp_path):
    sys.path.insert(0, BENCH)
    try:
        import suite_compiles
    finally:
        sys.path.remove(BENCH)
    (tmp_path / "test_two.py").write_text(textwrap.dedent("""
        import numba

        @numba.njit
        def inner(x):
            return x + 1

        @numba.njit
        def outer(x):
            return inner(x) * 2

        def test_int():
            assert outer(1) == 4

        def test_float_then_int_again():
            assert outer(1.5) == 5.0
            assert outer(2) == 6   # compiled already: nothing recorded
    """))
    out = tmp_path / "records"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(BENCH),
                                                       os.environ.get("PYTHONPATH", "")]),
               FASTBP_SUITE_COMPILES=str(out))
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "suite_compiles",
                          "-p", "no:cacheprovider", "-o", "addopts=", "test_two.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    specialisations, by_function, by_file = suite_compiles.report(str(out))
    names = sorted((name.rsplit(".", 1)[-1], types) for name, types in specialisations)
    assert names == [("outer", "(float64,)"), ("outer", "(int64,)")]   # inner: nested, not outer
    assert set(by_file) == {"test_two.py"}
    assert by_function["test_two.outer"] == pytest.approx(sum(specialisations.values()))
    assert all(seconds > 0 for seconds in specialisations.values())
    printed = subprocess.run([sys.executable, os.path.join(BENCH, "suite_compiles.py"), str(out)],
                             capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0 and "2 specialisations" in printed.stdout, printed.stderr


def test_the_report_credits_each_compile_to_its_own_tests_file(tmp_path):
    # (found in review, session 38: a specialisation compiled in two files,
    # a worker each, was all credited to the first file listed)
    import json
    sys.path.insert(0, BENCH)
    try:
        import suite_compiles
    finally:
        sys.path.remove(BENCH)
    row = [["fastbp.network.epoch_sgd", "(float64,)", 1]]
    (tmp_path / "gw0.json").write_text(json.dumps({"tests/test_a.py::t1": {"seconds": 1.0,
                                                                           "compiled": row}}))
    (tmp_path / "gw1.json").write_text(json.dumps({"tests/test_b.py::t9": {"seconds": 3.0,
                                                                           "compiled": row}}))
    per_key, by_function, by_file = suite_compiles.report(str(tmp_path))
    assert by_file == {"tests/test_a.py": 1.0, "tests/test_b.py": 3.0}
    assert by_function == {"fastbp.network.epoch_sgd": 4.0} and len(per_key) == 1


@pytest.mark.parametrize("dtypes, bad", [("float32,", "''"), ("float16", "'float16'")])
def test_compare_refuses_an_unknown_dtype_by_name(dtypes, bad, capsys):
    # (a traceback, after the GEMM peak had run, from NumPy or fastbp.MLP)
    sys.path.insert(0, BENCH)
    try:
        import compare
    finally:
        sys.path.remove(BENCH)
    with pytest.raises(SystemExit) as exc:
        compare.main(["--dtypes", dtypes, "--cases", "2-16-2", "--peers", "fastbp"])
    assert exc.value.code == 2
    assert f"unknown dtype(s) {bad}; the dtypes: float32, float64" in capsys.readouterr().err
