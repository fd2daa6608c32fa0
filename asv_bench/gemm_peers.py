"""The large cells' matrix products on NumPy's BLAS against PyTorch's, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/gemm_peers.py

On the GEMM-bound cells of ``compare.py`` every contender runs the same
products, so the BLAS behind them decides: fastbp calls NumPy's (OpenBLAS
in the wheels), PyTorch's CPU wheel its own (MKL; ``torch.__config__.show()``
says which). For each layer shape of those cells, the three products of a
training step (forward ``x @ W.T``, weight gradient ``d.T @ x``, delta
``d @ W``) into preallocated outputs, on both libraries' default threads:
GFLOP/s, medians of 7 runs of 20 calls, NumPy then PyTorch for each product.
"""
import argparse
import time

import numpy as np

SHAPES = [("float64", 256, 1024, 1024), ("float64", 256, 784, 1024), ("float32", 512, 2048, 2048)]


def median_seconds(fn, calls=20, runs=7):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls)
    return float(np.median(times))


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    import torch
    blas = next((part.split("=")[-1] for line in torch.__config__.show().splitlines()
                 for part in line.split(",") if "BLAS_INFO=" in part), "?")
    print(f"PyTorch {torch.__version__} (BLAS_INFO={blas}), NumPy {np.__version__}")
    print("rows x inputs x outputs     forward x@W.T   weight grad d.T@x   delta d@W   (GFLOP/s, NumPy / PyTorch)")
    for dtype, m, k, n in SHAPES:
        rng = np.random.default_rng(0)
        x = rng.random((m, k)).astype(dtype)
        W = rng.random((n, k)).astype(dtype)
        d = rng.random((m, n)).astype(dtype)
        out, grad, delta = np.empty((m, n), dtype), np.empty((n, k), dtype), np.empty((m, k), dtype)
        tx, tW, td, tout, tgrad, tdelta = map(torch.from_numpy, (x, W, d, out, grad, delta))
        flops = 2 * m * k * n
        cells = []
        for ours, theirs in [(lambda: np.matmul(x, W.T, out=out), lambda: torch.matmul(tx, tW.T, out=tout)),
                             (lambda: np.matmul(d.T, x, out=grad), lambda: torch.matmul(td.T, tx, out=tgrad)),
                             (lambda: np.matmul(d, W, out=delta), lambda: torch.matmul(td, tW, out=tdelta))]:
            a, b = median_seconds(ours), median_seconds(theirs)
            cells.append(f"{flops / a / 1e9:7.0f} / {flops / b / 1e9:<7.0f}")
        print(f"{dtype} {m} x {k} x {n}".ljust(28) + "   ".join(cells))


if __name__ == "__main__":
    main()
