"""The machine as fastbp sees it: CPU, BLAS and its kernel, Numba.

:func:`show_config` returns it as a dict; ``fastbp info`` prints it. Importing
fastbp says nothing: the warning about a BLAS kernel below the CPU's is only
in what these return.
"""
import os
import platform

# OpenBLAS's kernel names (threadpoolctl's ``architecture``) by the widest
# vector instructions they use: 3 AVX-512, 2 AVX2 + FMA, 1 AVX, 0 older.
_OPENBLAS_LEVEL = {
    "skylakex": 3, "cooperlake": 3, "sapphirerapids": 3,
    "haswell": 2, "zen": 2, "skylake": 2, "excavator": 2, "steamroller": 2,
    "sandybridge": 1, "bulldozer": 1, "piledriver": 1,
    # SSE only: OpenBLAS 0.3.31 reports these two for every older coretype
    # it is forced to (Prescott, Core2, Opteron ... run Katmai; Atom,
    # Barcelona, Bobcat run Nehalem); the others are older builds' names.
    "katmai": 0, "nehalem": 0, "prescott": 0, "core2": 0, "penryn": 0, "dunnington": 0,
    "atom": 0, "nano": 0, "opteron": 0, "opteron_sse3": 0, "barcelona": 0, "bobcat": 0,
}
_LEVEL_NAME = {3: "AVX-512", 2: "AVX2", 1: "AVX", 0: "SSE"}
# The vector extensions reported, in order (LLVM's feature names).
_EXTENSIONS = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vnni",
               "avx512bf16", "avx512fp16", "amx-tile", "neon", "sve")


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_level(extensions):
    if "avx512f" in extensions:
        return 3
    if "avx2" in extensions and "fma" in extensions:
        return 2
    return 1 if "avx" in extensions else 0


def _blas_info():
    """threadpoolctl's record of the BLAS serving fastbp's kernels (a dict, maybe empty)."""
    from . import threads
    try:
        libs = threads._blas_controller()
    except Exception:  # threadpoolctl could not look: report what is known
        libs = []
    return dict(libs[0].info()) if libs else {}


def blas_warning(cpu_level, architecture, environ=os.environ):
    """The warning when an OpenBLAS kernel is below what the CPU supports, or None."""
    level = _OPENBLAS_LEVEL.get(str(architecture).lower())
    if level is None or level >= cpu_level:
        return None
    message = (f"the BLAS runs its {architecture} kernel ({_LEVEL_NAME[level]}), below what this CPU"
               f" supports ({_LEVEL_NAME[cpu_level]}): large layers train slower than they could.")
    forced = environ.get("OPENBLAS_CORETYPE")
    if forced:
        message += (f" OPENBLAS_CORETYPE={forced} is set in the environment and forces it; unset it"
                    " (and OPENBLAS_L2_SIZE) to let OpenBLAS choose this CPU's kernel.")
    return message


def show_config():
    """The machine as fastbp sees it, as a dict.

    Keys: ``cpu`` (``name``, ``llvm_name``, ``extensions``: the vector
    extensions found), ``blas`` (``library``: the file serving fastbp's
    kernels or "scipy"; ``api``, ``version``, ``architecture``: the kernel
    OpenBLAS chose; ``threads``; ``environment``: OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE where set), ``numba`` (``version``, ``cache``: the
    kernel cache folder and how many kernels it holds for this CPU),
    ``fastbp`` (version) and ``warnings`` (a list of sentences, empty when
    all is well; e.g. a BLAS kernel below the CPU's).
    """
    import llvmlite.binding as llvm
    import numba

    from . import __version__, _blas, _jit
    features = llvm.get_host_cpu_features()
    extensions = [name for name in _EXTENSIONS if features.get(name)]
    blas = _blas_info()
    environment = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                   if k in os.environ}
    report = _jit.cache_report()
    config = {
        "fastbp": __version__,
        "cpu": {"name": _cpu_name(), "llvm_name": llvm.get_host_cpu_name(),
                "extensions": extensions},
        "blas": {"library": _blas.LIBRARY, "api": blas.get("internal_api"),
                 "version": blas.get("version"), "architecture": blas.get("architecture"),
                 "threads": blas.get("num_threads"), "environment": environment},
        "numba": {"version": numba.__version__, "cache": report},
        "warnings": [],
    }
    warning = blas_warning(_cpu_level(extensions), blas.get("architecture"))
    if warning:
        config["warnings"].append(warning)
    return config
