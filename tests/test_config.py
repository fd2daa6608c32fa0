"""fastbp.show_config() and `fastbp info`: the machine as fastbp sees it, and
the warning when the BLAS runs a kernel below what the CPU supports."""
import os
import subprocess
import sys

import llvmlite.binding as llvm
import numba
import pytest

import fastbp
from fastbp import _blas, _config, cli, threads


class _FakeLib:
    """threadpoolctl's controller of one library, as _config reads it."""

    def __init__(self, architecture):
        self._info = {"user_api": "blas", "internal_api": "openblas", "num_threads": 2,
                      "version": "0.3.99", "architecture": architecture, "filepath": "libfake.so"}

    def info(self):
        return dict(self._info)


def test_show_config_describes_cpu_blas_and_numba():
    config = fastbp.show_config()
    assert set(config) == {"fastbp", "cpu", "blas", "numba", "warnings"}
    assert config["fastbp"] == fastbp.__version__
    assert config["cpu"]["llvm_name"] == llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features()
    assert config["cpu"]["extensions"] == [e for e in _config._EXTENSIONS if features.get(e)]
    assert config["blas"]["library"] == _blas.LIBRARY
    assert config["blas"]["threads"] == threads._blas_controller()[0].info()["num_threads"]
    assert config["numba"]["version"] == numba.__version__
    assert config["numba"]["cache"]["path"] == fastbp._jit.cache_report()["path"]
    assert {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if k in os.environ} == config["blas"]["environment"]


@pytest.mark.parametrize("architecture,cpu,warned", [
    ("Haswell", {"avx512f": True, "avx2": True, "fma": True, "avx": True}, True),
    ("SkylakeX", {"avx512f": True, "avx2": True, "fma": True, "avx": True}, False),
    ("Haswell", {"avx2": True, "fma": True, "avx": True}, False),
    ("Sandybridge", {"avx2": True, "fma": True, "avx": True}, True),
    ("Prescott", {"sse4.2": True}, False),
    ("Katmai", {"avx512f": True, "avx2": True, "fma": True, "avx": True}, True),
    ("Nehalem", {"avx2": True, "fma": True, "avx": True}, True),
    ("Nehalem", {"sse4.2": True}, False),
    ("NeoverseN1", {"neon": True}, False),  # not an x86 kernel: nothing to compare
    ("Piledriver", {"fma": True, "avx": True}, False),  # AVX and FMA, no AVX2 (review HIE)
])
def test_warns_when_the_blas_kernel_is_below_the_cpu(monkeypatch, architecture, cpu, warned):
    monkeypatch.setattr(threads, "_blas_controller", lambda: [_FakeLib(architecture)])
    monkeypatch.setattr(llvm, "get_host_cpu_features", lambda: cpu)
    config = fastbp.show_config()
    assert config["blas"]["architecture"] == architecture
    assert len(config["warnings"]) == (1 if warned else 0)
    if warned:
        assert architecture in config["warnings"][0]
        # The variable that forces the kernel is named exactly when it is set.
        assert ("OPENBLAS_CORETYPE=" in config["warnings"][0]) == ("OPENBLAS_CORETYPE" in os.environ)


def test_warning_names_openblas_coretype_when_set():
    forced = _config.blas_warning(3, "Haswell", {"OPENBLAS_CORETYPE": "Haswell"})
    assert "OPENBLAS_CORETYPE=Haswell" in forced and "AVX-512" in forced and "AVX2" in forced
    assert "OPENBLAS_CORETYPE" not in _config.blas_warning(3, "Haswell", {})
    assert _config.blas_warning(3, "SkylakeX", {"OPENBLAS_CORETYPE": "SkylakeX"}) is None
    assert _config.blas_warning(3, None, {}) is None  # not an OpenBLAS: nothing to compare


def test_an_sse_kernel_forced_on_a_real_openblas_is_named():
    """OpenBLAS runs its Katmai (SSE) kernel when forced to Prescott: that is
    far below any CPU with AVX, and was not warned of."""
    code = ("import fastbp, json; c = fastbp.show_config();"
            " print(json.dumps([c['blas'].get('architecture'), c['warnings']]))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_L2_SIZE"}
    env["OPENBLAS_CORETYPE"] = "Prescott"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    import json
    architecture, warnings = json.loads(done.stdout)
    if architecture is None or _config._cpu_level(
            {k for k, v in llvm.get_host_cpu_features().items() if v}) == 0:
        pytest.skip("not an OpenBLAS on an x86 CPU with AVX")
    assert len(warnings) == 1
    assert f"runs its {architecture} kernel (SSE)" in warnings[0]
    assert "OPENBLAS_CORETYPE=Prescott is set in the environment" in warnings[0]


def test_info_without_a_model_prints_the_machine_and_the_warning(monkeypatch, capsys):
    monkeypatch.setattr(threads, "_blas_controller", lambda: [_FakeLib("Haswell")])
    monkeypatch.setattr(llvm, "get_host_cpu_features",
                        lambda: {"avx512f": True, "avx2": True, "fma": True, "avx": True})
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "avx512f" in out
    assert f"BLAS: {_blas.LIBRARY}" in out
    assert "BLAS kernel: Haswell (openblas 0.3.99), 2 threads" in out
    assert "kernel cache: " in out
    assert "warning: the BLAS runs its Haswell kernel (AVX2), below what this CPU supports (AVX-512)" in out


def test_import_is_silent():
    out = subprocess.run([sys.executable, "-c", "import fastbp"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONWARNINGS="default"))
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""


def test_import_under_numba_disable_jit_says_why_it_cannot():
    # (it failed with AttributeError: 'function' object has no attribute 'py_func')
    import os
    import subprocess
    import sys
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", "import fastbp"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode != 0
    assert "ImportError: fastbp's kernels run compiled only" in done.stderr
    assert "unset NUMBA_DISABLE_JIT" in done.stderr


def test_the_kernel_count_does_not_depend_on_what_was_imported():
    """Review HAH: `fastbp info` and show_config() counted the kernels of the
    modules imported so far: 11 of 156 without fastbp.sklearn's, 24 of 187
    with them, for one cache."""
    script = ("import sys, fastbp\n"
              "first = fastbp.show_config()['numba']['cache']\n"
              "import fastbp.sklearn\n"
              "again = fastbp.show_config()['numba']['cache']\n"
              "print(first['kernels'], again['kernels'], first['cached'] == again['cached'])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    first, again, same = out.stdout.split()
    from fastbp import _sklearn_kernels  # noqa: F401
    # (fastbp's own: other tests of this process may have made kernels of theirs)
    every = sum(hasattr(k, "_cache") and k.py_func.__module__.split(".")[0] == "fastbp"
                for k in fastbp._jit.KERNELS)
    assert int(first) == int(again) == every and same == "True"
    assert any(k.py_func.__module__ == "fastbp._sklearn_kernels" for k in fastbp._jit.KERNELS)
