"""Which functions a script compiles, step by step, in a fresh process with an
empty Numba cache (from Numba's ``numba:compile`` events): what the tests of
compile time assert on, structurally, never how long it takes."""
import json
import os
import subprocess
import sys
import textwrap

_PRELUDE = textwrap.dedent("""
    import json, sys
    from numba.core import event
    compiled, wrapped, step = {}, {}, ["import"]

    class Listener(event.Listener):
        def on_start(self, ev):
            d = ev.data["dispatcher"]
            name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
            compiled.setdefault(step[0], []).append(name)
            if not d.targetoptions.get("no_cpython_wrapper", False):
                wrapped.setdefault(step[0], []).append(name)
        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())

    from numba.core import codegen as _codegen
    emitted, _emit = {}, _codegen.JITCodeLibrary._finalize_specific

    def _finalize_specific(self):  # the library becomes machine code
        emitted.setdefault(step[0], []).append(self.name)
        return _emit(self)

    _codegen.JITCodeLibrary._finalize_specific = _finalize_specific
""")


def compiled_by(script, cache_dir, wrapped=None, emitted=None):
    """``{step: [module.qualname, ...]}`` of every compilation ``script`` (a
    source that sets ``step[0]`` before each step) made, run in a fresh
    process with ``cache_dir`` (empty) as Numba's cache;
    FASTBP_INSTALL_CACHE=0, as an installed wheel's install-time cache would
    make it warm. ``wrapped``, a dict, receives the same for the compilations
    that built a CPython wrapper (the function can be called from Python);
    ``emitted``, a dict, the names of the code libraries made machine code
    (Numba names a function's library by its qualified name)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), FASTBP_INSTALL_CACHE="0")
    source = _PRELUDE + textwrap.dedent(script) + "\njson.dump([compiled, wrapped, emitted], sys.stdout)\n"
    out = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    compiled, with_wrapper, made = json.loads(out.stdout)
    if wrapped is not None:
        wrapped.update(with_wrapper)
    if emitted is not None:
        emitted.update(made)
    return compiled
