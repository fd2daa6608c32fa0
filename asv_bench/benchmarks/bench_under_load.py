"""Training with a spinning process on every core, against a quiet machine.

Each fit runs in a fresh process (the old cliff struck some processes and
not others). The tracked value is the worst loaded run over the median
quiet one: on a machine that is otherwise idle a fit that loses the cores
to other processes should slow down in proportion to the CPU it lost (at
most 3x here), not by 35x as when small products waited for a second BLAS
thread that had no core (see fastbp.threads).
"""
import numpy as np

from ._load import NETWORKS, cores, run, spinning


class UnderLoad:
    params = (list(NETWORKS),)
    param_names = ["network"]
    timeout = 900
    repeat = 1
    number = 1
    REPEATS = 3

    def setup(self, network):
        run(network, None)  # loads (or compiles) the kernels once

    def track_loaded_over_quiet(self, network):
        quiet = np.median([run(network, None)[0] for _ in range(self.REPEATS)])
        with spinning(cores()):
            loaded = [run(network, None)[0] for _ in range(self.REPEATS)]
        return float(max(loaded) / quiet)
    track_loaded_over_quiet.unit = "ratio"
