"""Run under mpiexec by tests/test_distributed.py: train several
configurations with fit(distributed=True), save each rank's params; rank 0
also trains the single-process reference on the same global batches."""
import json
import sys

import numpy as np

import fastbp

out, n_samples, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
comm = fastbp.distributed.world()
fastbp.set_num_threads(1)
rng = np.random.default_rng(0)
X = rng.normal(size=(n_samples, 6))
labels = rng.integers(0, 3, n_samples)
values = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])

CONFIGS = {
    "f64-adam-softmax": dict(dtype="float64", optimizer=lambda: fastbp.Adam(lr=0.01), y=labels,
                             output="softmax", alpha=0.0),
    "f32-momentum-softmax": dict(dtype="float32", optimizer=lambda: fastbp.SGD(lr=0.05, momentum=0.9),
                                 y=labels, output="softmax", alpha=0.0),
    "f64-sgd-regression-alpha": dict(dtype="float64", optimizer=lambda: fastbp.SGD(lr=0.05), y=values,
                                     output="identity", alpha=0.01),
    "f64-adam-dropout": dict(dtype="float64", optimizer=lambda: fastbp.Adam(lr=0.01), y=labels,
                             output="softmax", alpha=0.001, dropout=[0.3, 0.2],
                             fit_seed=None),   # (the model's own RNG: rank 0's is broadcast)
}
report = {}
for name, cfg in CONFIGS.items():
    def make(seed):
        n_out = 3 if cfg["output"] == "softmax" else 2
        return fastbp.MLP([6, 16, 8, n_out], activation="tanh", output=cfg["output"],
                          dtype=cfg["dtype"], seed=seed, alpha=cfg["alpha"],
                          dropout=cfg.get("dropout", 0.0))
    # Different seeds per rank: rank 0's initial params must win the broadcast.
    net = make(7 + comm.rank)
    # Every rank asks for progress lines and checkpoints; only rank 0 gets them.
    checkpoint = fastbp.ModelCheckpoint(f"{out}/{name}-checkpoint-rank{comm.rank}-{{epoch}}.npz", every=5)
    history = net.fit(X, cfg["y"], epochs=5, batch_size=batch, optimizer=cfg["optimizer"](),
                      seed=cfg.get("fit_seed", 3), verbose=2, distributed=True, validation_data=(X[:40], cfg["y"][:40]),
                      callbacks=[checkpoint])
    np.save(f"{out}/{name}-rank{comm.rank}.npy", net.params)
    if comm.rank == 0:
        ref = make(7)
        ref_history = ref.fit(X, cfg["y"], epochs=5, batch_size=batch, optimizer=cfg["optimizer"](),
                              seed=cfg.get("fit_seed", 3), verbose=0, validation_data=(X[:40], cfg["y"][:40]))
        np.save(f"{out}/{name}-reference.npy", ref.params)
        report[name] = {"steps": net.optimizer.t, "loss": history["loss"], "ref_loss": ref_history["loss"],
                        "val": [v for k, v in history.history.items() if k.startswith("val_")],
                        "ref_val": [v for k, v in ref_history.history.items() if k.startswith("val_")]}
if comm.rank == 0:
    with open(f"{out}/report.json", "w") as fh:
        json.dump(report, fh)
