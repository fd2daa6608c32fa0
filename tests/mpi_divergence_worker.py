"""Run under mpiexec by tests/test_distributed.py: every divergence case of
tests/divergence_cases.py trained with fit(distributed=True), and validation
R^2 on targets near 1e8; rank 0 writes what every rank ended with."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastbp  # noqa: E402
from divergence_cases import CASES, near_1e8, run  # noqa: E402

out = Path(sys.argv[1])
comm = fastbp.distributed.world()
fastbp.set_num_threads(1)
report = {}
for name in CASES:
    net, history = run(name, distributed=True)
    gathered = comm.gather(net.params.copy(), root=0)
    if comm.rank == 0:
        np.save(out / f"{name}.npy", np.array(gathered))
        report[name] = {"t": net.optimizer.t, "loss": history["loss"],
                        "diverged": history.diverged}
for key, rows in (("r2", slice(60, None)), ("r2_of_3", slice(60, 63))):
    # (3 rows: shards of 1 and 2, whose means near 1e8 differ by their rounding)
    net, X, y = near_1e8()
    h = net.fit(X[:60], y[:60], epochs=1, batch_size=60, lr=1e-30, verbose=0, distributed=True,
                validation_data=(X[rows], y[rows]))
    report[key] = {"val_r2": h["val_r2"][-1], "prediction": net.predict(X[rows]).tolist(),
                   "val_loss": h["val_loss"][-1]}
if comm.rank == 0:
    (out / "report.json").write_text(json.dumps(report))
