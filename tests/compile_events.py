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
    compiled, step = {}, ["import"]

    class Listener(event.Listener):
        def on_start(self, ev):
            f = ev.data["dispatcher"].py_func
            compiled.setdefault(step[0], []).append(f"{f.__module__}.{f.__qualname__}")
        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())
""")


def compiled_by(script, cache_dir):
    """``{step: [module.qualname, ...]}`` of every compilation ``script`` (a
    source that sets ``step[0]`` before each step) made, run in a fresh
    process with ``cache_dir`` (empty) as Numba's cache;
    FASTBP_INSTALL_CACHE=0, as an installed wheel's install-time cache would
    make it warm."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), FASTBP_INSTALL_CACHE="0")
    source = _PRELUDE + textwrap.dedent(script) + "\njson.dump(compiled, sys.stdout)\n"
    out = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
