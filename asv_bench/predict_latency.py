"""One-row latency and 90k-row throughput of predict_proba against ONNX Runtime.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/predict_latency.py [--profile]

A 64-100-10 ReLU / softmax float32 model; ONNX Runtime runs the same weights
as a hand-built Gemm / Relu / Gemm / Softmax graph with 2 intra-op threads
(needs onnx and onnxruntime). Medians of 7 timeit repeats. --profile adds a
cProfile of 20,000 one-row calls (the Python boundary).
"""
import argparse
import cProfile
import pstats
import timeit

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import fastbp

parser = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--profile", action="store_true",
                    help="add a cProfile of 20,000 one-row calls")
args = parser.parse_args()
rng = np.random.default_rng(0)
net = fastbp.MLP([64, 100, 10], activation="relu", output="softmax", dtype="float32", seed=0)
W = net.weights; B = net.biases
def graph():
    nodes, inits = [], []
    x = "X"
    for l in range(2):
        inits += [numpy_helper.from_array(np.ascontiguousarray(W[l].T), f"W{l}"), numpy_helper.from_array(B[l].copy(), f"b{l}")]
        nodes += [helper.make_node("Gemm", [x, f"W{l}", f"b{l}"], [f"z{l}"])]
        x = f"z{l}"
        if l == 0:
            nodes.append(helper.make_node("Relu", [x], ["a0"])); x = "a0"
    nodes.append(helper.make_node("Softmax", [x], ["P"], axis=1))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 64])],
                          [helper.make_tensor_value_info("P", TensorProto.FLOAT, [None, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
so = ort.SessionOptions(); so.intra_op_num_threads = 2
sess = ort.InferenceSession(graph().SerializeToString(), so, providers=["CPUExecutionProvider"])
x1 = rng.normal(size=(1, 64)).astype(np.float32); X = rng.normal(size=(90000, 64)).astype(np.float32)
np.testing.assert_allclose(sess.run(None, {"X": X[:100]})[0], net.predict_proba(X[:100]), rtol=1e-4, atol=1e-6)
def med(f, n, r=7):
    return float(np.median(timeit.repeat(f, number=n, repeat=r))) / n
for name, f, n in [("fastbp predict_proba 1 row", lambda: net.predict_proba(x1), 20000),
                   ("fastbp predict 1 row", lambda: net.predict(x1), 20000),
                   ("onnxruntime 1 row", lambda: sess.run(None, {"X": x1}), 20000)]:
    print(f"{name}: {1e6 * med(f, n):.2f} us")
for name, f in [("fastbp predict_proba 90k", lambda: net.predict_proba(X)), ("onnxruntime 90k", lambda: sess.run(None, {"X": X}))]:
    t = med(f, 3, 7)
    print(f"{name}: {X.shape[0] / t / 1e6:.2f} M rows/s")
if args.profile:
    profile = cProfile.Profile()
    profile.runcall(lambda: [net.predict_proba(x1) for _ in range(20000)])
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)
