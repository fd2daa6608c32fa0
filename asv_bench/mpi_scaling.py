"""Data-parallel throughput and the communication share of the step time.

    mpiexec -n 1 python -m mpi4py asv_bench/mpi_scaling.py --threads 2
    mpiexec -n 2 python -m mpi4py asv_bench/mpi_scaling.py --threads 1

Trains 784-1024-1024-10 (ReLU, float32, batch 256, plain SGD through the
distributed path) on synthetic data; every rank holds the data, each takes
its shard of every global batch. Prints, on rank 0, the median epoch's
samples/s over all ranks and the share of the epoch spent in Allreduce.
"""
import argparse

import numpy as np

import fastbp


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank")
    parser.add_argument("--steps", type=int, default=16, help="global batches per epoch")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sizes", default="784,1024,1024,10")
    args = parser.parse_args(argv)
    comm = fastbp.distributed.world()
    fastbp.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    n = args.batch_size * args.steps
    rng = np.random.default_rng(0)
    X = rng.random((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n)
    net = fastbp.MLP(sizes, activation="relu", seed=0)
    net.fit(X[:args.batch_size], y[:args.batch_size], batch_size=args.batch_size, lr=1e-4,
            verbose=0, distributed=True)  # compile and allocate
    history = net.fit(X, y, epochs=args.epochs, batch_size=args.batch_size, lr=1e-4, verbose=0,
                      distributed=True)
    seconds = np.median(history["seconds"])
    share = np.median(np.array(history["comm_seconds"]) / np.array(history["seconds"]))
    if comm.rank == 0:
        print(f"ranks {comm.size} x threads {args.threads}: {n / seconds:,.0f} samples/s,"
              f" epoch {seconds * 1e3:.1f} ms (median of {args.epochs}),"
              f" allreduce {share * 100:.1f} % of it; {net.n_params:,} params"
              f" = {net.n_params * 4 / 1e6:.1f} MB per allreduce", flush=True)
    return n / seconds, share


if __name__ == "__main__":
    main()
