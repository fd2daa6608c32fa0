"""Serving: fastbp's predict against ONNX Runtime on the same weights (the
model exported by ``net.to_onnx()``), one row and 90k rows of a 64-100-10
network in float32. Both run with their default threads. Skipped (asv's
NotImplementedError) where onnx or onnxruntime is not installed.

Side by side, outside asv: ``python asv_bench/serving.py``.
"""
import numpy as np

import fastbp

SIZES = [64, 100, 10]
ROWS = {"1 row": 1, "90k rows": 90_000}


def model(activation="relu", dtype="float32"):
    """The benchmarked network, its ONNX Runtime sessions and rows of both
    sizes: ``{"probabilities": session, "label": session}``, the first of
    the exported graph cut to its probabilities (ONNX Runtime runs the whole
    graph whatever output is fetched: the label's ArgMax cost it 1.11-1.13x
    on one row, work predict_proba does not do), the second the whole graph."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise NotImplementedError("onnxruntime is not installed") from None
    net = fastbp.MLP(SIZES, activation=activation, dtype=dtype, seed=0)
    try:
        exported = net.to_onnx()
    except ImportError:   # (onnx itself missing: a failure in asv, not the skip promised)
        raise NotImplementedError("onnx is not installed") from None
    import onnx
    import onnx.utils
    probabilities = onnx.utils.Extractor(onnx.load_from_string(exported)).extract_model(
        ["X"], ["probabilities"])
    sess = {what: ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
            for what, graph in (("probabilities", probabilities.SerializeToString()),
                                ("label", exported))}
    rng = np.random.default_rng(0)
    X = {k: rng.normal(size=(n, SIZES[0])).astype(dtype) for k, n in ROWS.items()}
    # Compile or load the kernels outside the timing, on every size timed:
    # 90k rows take the chunked path, and predict's labels their own kernel
    # (asv run --quick times one call: that first call was 0.56 s, not 45 ms).
    for rows in X.values():
        net.predict_proba(rows)
        net.predict(rows)
        for session in sess.values():
            session.run(None, {"X": rows})
    return net, sess, X


class Serving:
    params = [list(ROWS)]
    param_names = ["rows"]

    def setup(self, rows):
        self.net, self.sess, X = model()
        self.X = X[rows]

    def time_fastbp_predict_proba(self, rows):
        self.net.predict_proba(self.X)

    def time_onnxruntime_probabilities(self, rows):
        self.sess["probabilities"].run(["probabilities"], {"X": self.X})

    def time_fastbp_predict(self, rows):
        self.net.predict(self.X)

    def time_onnxruntime_label(self, rows):
        self.sess["label"].run(["label"], {"X": self.X})
