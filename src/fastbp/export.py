"""ONNX export: a fastbp model as an ONNX graph that ONNX Runtime serves
without Numba (``pip install "fastbp[onnx]"``).

    net.to_onnx("model.onnx")                    # or: fastbp export model.npz model.onnx
    import onnxruntime as ort
    sess = ort.InferenceSession("model.onnx")
    proba, label = sess.run(["probabilities", "label"], {"X": X.astype(np.float32)})

The graph takes the raw rows ``X`` (N, n_in) in the model's dtype, as
:meth:`fastbp.MLP.predict` does, or in ``input_dtype`` given: a float32
model exported with ``input_dtype="float64"`` takes float64 rows and
standardises them as they are, as ``predict`` does float64 rows (a float32
``X`` is rounded first, as ``predict``'s float32 rows are). A model with categories (text columns
one-hot encoded, ``net.categories``) takes its raw rows as text instead: ``X``
is a string tensor (N, n_columns), every column as the command line reads it
from a file, numbers as decimal text (``repr(float(v))`` round-trips)::

    rows = np.array([["0.3", "red", "1.2"], ["-1", "teal", "4e-3"]], dtype=object)
    label, proba = sess.run(["label", "probabilities"], {"X": rows})
    label, proba = sess.run(["label", "probabilities"], {"X": raw.astype(str)})

The graph is built from stages, in order:

0. for a model with categories, the encoding of the raw text rows, as
   :func:`fastbp._preprocess.encode_rows` does it: each run of numeric
   columns ``Gather``-ed and ``Cast`` from text to double (ONNX Runtime
   parses with ``strtod``: bitwise the doubles of NumPy's
   ``astype(np.float64)``, tested; a subnormal number, or one that rounds
   to zero such as ``1e-400``, is an error there),
   each text column ``Gather``-ed and one-hot
   encoded by an ``ai.onnx.ml`` ``OneHotEncoder`` (``cats_strings``: the
   model's labels in order; ``zeros=1``: a value not seen in training is an
   all-zero code, as in fastbp, but without fastbp's warning), then
   ``Concat``-ed in the model's input order, in float64;
1. the model's input preprocessing: ``Cast`` to double, ``Sub``
   ``input_mean``, ``Div`` ``input_scale``, ``Cast`` back (the arithmetic
   fastbp does, in float64, so a float32 model sees the same inputs);
2. each layer as ``Gemm`` (W in fastbp's ``(n_out, n_in)`` layout,
   ``transB=1``) followed by its activation (``Tanh``, ``Sigmoid``,
   ``Relu``, ``LeakyRelu`` alpha 0.01, ``Elu`` alpha 1, ``Softplus``, none
   for identity), the last layer by the output function (``Softmax``;
   ``1 / (1 + exp(min(-z, 88)))`` (709 in float64) for sigmoid, whose small
   probabilities ONNX Runtime's ``Sigmoid`` kernel loses; none);
3. the outputs: ``probabilities`` (softmax or sigmoid, as ``predict_proba``)
   and ``label`` (as ``predict``: ``ArgMax``, or ``> 0.5`` for sigmoid, then
   a ``Gather`` from the constant ``classes_`` when the model has classes);
   or ``values`` for an identity output, ``(N, n_out)``, with the target
   scaling undone (``Mul``, ``Add``, in float64) as ``predict`` does.

The same stages serve :func:`to_onnx` (a standalone model) and the
``skl2onnx`` converter of :mod:`fastbp.sklearn`'s estimators (a piece of a
scikit-learn pipeline): each writes through a small builder, ``_Model`` or
``_Container``, that knows how to add a node and a constant.
"""
import json

import numpy as np

from ._modelfile import _metadata_json
from ._validate import require

# Opset of the exported model unless told otherwise (ONNX Runtime 1.14 and later run it).
DEFAULT_OPSET = 18
# The opset in which each operator the export uses got the definition it
# relies on: double inputs for the activations (6), numpy-style broadcasting
# for Gemm's bias and the arithmetic (7) and for Max and Min (8: a float64
# graph writes leaky_relu and elu with them). The lowest opset fastbp writes is
# the largest of these among the operators a model needs.
OP_SINCE = {"Gemm": 7, "Sub": 7, "Div": 7, "Mul": 7, "Add": 7, "Greater": 7, "Cast": 6,
            "Tanh": 6, "Sigmoid": 6, "Relu": 6, "LeakyRelu": 6, "Elu": 6, "Softplus": 1,
            "Softmax": 1, "ArgMax": 1, "Max": 8, "Min": 8, "Exp": 6, "Log": 6, "Abs": 6,
            "Neg": 6, "Gather": 1, "Reshape": 5, "Concat": 4, "Identity": 1,
            # Cast gained string inputs in opset 9 (the numbers of raw text rows).
            "Cast from text": 9}
# The ai.onnx.ml opset of a model with categories: OneHotEncoder is in its first.
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 1
# Hidden activation or output function -> (ONNX operator, attributes); None: no node.
ACTIVATION_OPS = {"identity": None, "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
                  "relu": ("Relu", {}), "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
                  "elu": ("Elu", {"alpha": 1.0}), "softplus": ("Softplus", {}),
                  "softmax": ("Softmax", {"axis": 1})}


def _proto_type(dtype):
    """The ONNX element type of a NumPy dtype the export uses."""
    from onnx import TensorProto
    dtype = np.dtype(dtype)
    if dtype.kind == "U":
        return TensorProto.STRING
    return {"f4": TensorProto.FLOAT, "f8": TensorProto.DOUBLE, "i8": TensorProto.INT64,
            "u8": TensorProto.UINT64}[dtype.str[1:]]


def label_constant(classes):
    """The classes as an array ONNX holds: int64 for integers and bools, but
    uint64 as uint64 (values past int64's range wrapped to negative ones),
    double for other numbers, text as is."""
    kind = classes.dtype.kind
    if classes.dtype == np.uint64:
        return classes
    if kind in "iub":
        return classes.astype(np.int64)
    if kind == "f":
        wide = classes.astype(np.float64)
        if classes.dtype.itemsize > 8 and (wide != classes).any():
            # (longdouble classes: the label 0.1L would come out as the double 0.1)
            raise ValueError(f"cannot export classes of {classes.dtype} that double changes"
                             f" ({classes[wide != classes][0]!r}): ONNX holds the labels as"
                             " double; set net.classes_ to float64 values")
        return wide
    return classes.astype(str)


# ------------------------------------------------------------------ builders
class _Model:
    """Collects the nodes and constants of a standalone ONNX model."""

    def __init__(self, reserved=()):
        self.nodes, self.initializers = [], []
        self._used = set(reserved)  # the graph's input and output names

    def name(self, stem):
        name, i = stem, 0
        while name in self._used:
            i += 1
            name = f"{stem}_{i}"
        self._used.add(name)
        return name

    def const(self, stem, array):
        from onnx import numpy_helper
        name = self.name(stem)
        # np.asarray, not np.ascontiguousarray: a 0-d index stays 0-d
        self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def op(self, op_type, inputs, stem, output=None, **attrs):
        from onnx import helper
        out = output if output is not None else self.name(stem)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out],
                                           name=self.name(f"{op_type}_{stem}"), **attrs))
        return out


class _Container:
    """Adds the same nodes to a skl2onnx conversion (its scope and container)."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container

    def name(self, stem):
        return self.scope.get_unique_variable_name(stem)

    def const(self, stem, array):
        array = np.ascontiguousarray(array)
        name = self.name(stem)
        content = ([s.encode("utf-8") for s in array.ravel()] if array.dtype.kind == "U"
                   else array.ravel().tolist())
        self.container.add_initializer(name, _proto_type(array.dtype), list(array.shape), content)
        return name

    def op(self, op_type, inputs, stem, output=None, **attrs):
        out = output if output is not None else self.name(stem)
        self.container.add_node(op_type, list(inputs), [out], op_version=OP_SINCE[op_type],
                                name=self.scope.get_unique_operator_name(f"fastbp_{op_type}"),
                                **attrs)
        return out


# -------------------------------------------------------------------- stages
def _cast(b, x, to_dtype, stem):
    return b.op("Cast", [x], stem, to=_proto_type(to_dtype))


def _standardise(b, net, x, x_dtype=None):
    """(x - input_mean) / input_scale in float64, as MLP._inputs, then the
    model's dtype; ``x`` holds ``x_dtype`` (default: the model's)."""
    x_dtype = net.dtype if x_dtype is None else np.dtype(x_dtype)
    if net.input_mean is not None:
        if x_dtype != np.float64:
            x, x_dtype = _cast(b, x, np.float64, "x_double"), np.dtype(np.float64)
        x = b.op("Sub", [x, b.const("input_mean", net.input_mean)], "x_centred")
        x = b.op("Div", [x, b.const("input_scale", net.input_scale)], "x_standardised")
    return x if x_dtype == net.dtype else _cast(b, x, net.dtype, "x_scaled")


def _column_runs(net):
    """The raw columns in order, grouped as the encoding reads them: a text
    column alone ``(j, labels)``, a run of numeric columns ``(columns, None)``."""
    text = net.categories
    runs = []
    for j in range(net.n_columns):
        if j in text:
            runs.append((j, text[j]))
        elif runs and runs[-1][1] is None:
            runs[-1][0].append(j)
        else:
            runs.append(([j], None))
    return runs


def _encode(b, net, x):
    """Raw text rows (N, n_columns) -> the network's inputs (N, n_in) in
    float64, as fastbp._preprocess.encode_rows: numbers parsed, text columns
    one-hot (an unseen value: all zeros), in the model's input order."""
    pieces = []
    for cols, labels in _column_runs(net):
        if labels is None:
            index = b.const("numeric_columns", np.array(cols, dtype=np.int64))
            numbers = b.op("Gather", [x, index], f"columns{cols[0]}", axis=1)
            pieces.append(_cast(b, numbers, np.float64, f"numbers{cols[0]}"))
            continue
        # a scalar index: column j as (N,), which OneHotEncoder turns into (N, k)
        text = b.op("Gather", [x, b.const("text_column", np.array(cols, dtype=np.int64))],
                    f"column{cols}", axis=1)
        code = b.op("OneHotEncoder", [text], f"code{cols}", domain=ML_DOMAIN,
                    cats_strings=[str(v) for v in labels], zeros=1)
        pieces.append(_cast(b, code, np.float64, f"code{cols}_double"))
    if len(pieces) == 1:
        return pieces[0]
    return b.op("Concat", pieces, "x_encoded", axis=1)


def _layers(b, net, x):
    """Every layer, Gemm then activation; the last one's activation is the
    output function. Returns the network's output (the model's dtype)."""
    n_layers = len(net.weights)
    for l, (W, bias) in enumerate(zip(net.weights, net.biases)):
        x = b.op("Gemm", [x, b.const(f"W{l}", W), b.const(f"b{l}", bias)], f"z{l}", transB=1)
        if l == n_layers - 1 and net.output == "sigmoid":
            x = _sigmoid_output(b, x, net.dtype)
        else:
            x = _activation(b, net.activations[l] if l < n_layers - 1 else net.output, x, l,
                            net.dtype)
    return x


def _sigmoid_output(b, x, dtype):
    # 1 / (1 + exp(-z)), fastbp's formula: ONNX Runtime's Sigmoid kernel
    # loses the relative accuracy of small probabilities (float32: 2e-4 at
    # z = -10, not monotone past -16, exactly 0 from -16.3 on; float64: 0
    # from -36.7), which the served probabilities and their logs keep
    # (review HBI). A hidden sigmoid keeps the kernel: its error is absolute.
    # -z is capped where fastbp's exp caps it (88 in float32, 709 in
    # float64): past it predict_proba gives its floor (6e-39, 1.2e-308), not
    # the 0 of an exp overflowed to inf (review HBP).
    one = b.const("sigmoid_one", np.array(1.0, dtype=dtype))
    cap = b.const("sigmoid_cap", np.array(88.0 if dtype == np.float32 else 709.0, dtype=dtype))
    neg = b.op("Min", [b.op("Neg", [x], "out_neg"), cap], "out_capped")
    tail = b.op("Exp", [neg], "out_exp")
    return b.op("Div", [one, b.op("Add", [one, tail], "out_1p")], "out_sigmoid")


def _activation(b, act, x, l, dtype):
    """f_act(x), the function fastbp's kernels compute
    (fastbp.ops.bias_act_forward), to rounding: fastbp's ELU and softplus
    take expm1 and log1p, which ONNX has not, so their values below about
    1e-8 (float32) or 1e-16 (float64) may differ from fastbp's by as much
    as themselves (an absolute difference at rounding level)."""
    if dtype == np.float64 and act in DOUBLE_FORMS:
        return DOUBLE_FORMS[act](b, x, f"a{l}")
    if ACTIVATION_OPS[act] is None:
        return x
    op_type, attrs = ACTIVATION_OPS[act]
    return b.op(op_type, [x], f"a{l}", **attrs)


def _leaky_relu_double(b, x, stem):
    # LeakyRelu's alpha is a float32 attribute (0.01 is 0.0099999998):
    # max(x, 0.01 x) keeps fastbp's slope in float64.
    slope = b.const("leaky_slope", np.array(0.01, dtype=np.float64))
    return b.op("Max", [x, b.op("Mul", [x, slope], stem + "_slope")], stem)


def _elu_double(b, x, stem):
    # relu(x) + exp(min(x, 0)) - 1: x above 0, exp(x) - 1 below (ONNX
    # Runtime has no double Elu kernel).
    zero, one = (b.const(name, np.array(v, dtype=np.float64)) for name, v in (("zero", 0.0),
                                                                              ("one", 1.0)))
    below = b.op("Sub", [b.op("Exp", [b.op("Min", [x, zero], stem + "_neg")], stem + "_exp"), one],
                 stem + "_below")
    return b.op("Add", [b.op("Relu", [x], stem + "_pos"), below], stem)


def _softplus_double(b, x, stem):
    # max(x, 0) + log(1 + exp(-|x|)), fastbp's overflow-free form with log
    # for its log1p (ONNX Runtime has no double Softplus kernel).
    one = b.const("one", np.array(1.0, dtype=np.float64))
    tail = b.op("Exp", [b.op("Neg", [b.op("Abs", [x], stem + "_abs")], stem + "_negabs")],
                stem + "_exp")
    tail = b.op("Log", [b.op("Add", [one, tail], stem + "_1p")], stem + "_log1p")
    return b.op("Add", [b.op("Relu", [x], stem + "_pos"), tail], stem)


# Activations written with elementary operators in a float64 graph.
DOUBLE_FORMS = {"leaky_relu": _leaky_relu_double, "elu": _elu_double,
                "softplus": _softplus_double}
SIGMOID_OUTPUT_OPS = ("Neg", "Min", "Exp", "Add", "Div")
DOUBLE_OPS = {"leaky_relu": ("Max", "Mul"), "elu": ("Min", "Exp", "Sub", "Relu", "Add"),
              "softplus": ("Abs", "Neg", "Exp", "Add", "Log", "Relu")}


def _values(b, net, out, output):
    """An identity output in the targets' units: out * target_scale + target_mean
    in float64, then the model's dtype (as MLP._answer)."""
    if net.target_mean is None:
        return b.op("Identity", [out], "values", output=output)
    wide = out if net.dtype == np.float64 else _cast(b, out, np.float64, "out_double")
    y = b.op("Mul", [wide, b.const("target_scale", net.target_scale)], "y_scaled")
    if net.dtype == np.float64:
        return b.op("Add", [y, b.const("target_mean", net.target_mean)], "values", output=output)
    y = b.op("Add", [y, b.const("target_mean", net.target_mean)], "y_double")
    return b.op("Cast", [y], "values", output=output, to=_proto_type(net.dtype))


def _label(b, net, proba, output):
    """The answer of predict for a softmax or sigmoid output."""
    if net.output == "softmax":
        idx = b.op("ArgMax", [proba], "class_index", axis=1, keepdims=0)
    else:
        half = b.const("half", np.array(0.5, dtype=net.dtype))
        above = b.op("Greater", [proba, half], "above_half")
        idx = b.op("Cast", [above], "class_index", to=_proto_type(np.int64))
        if net.sizes[-1] == 1:
            idx = b.op("Reshape", [idx, b.const("flat", np.array([-1], dtype=np.int64))],
                       "class_index_flat")
    if net.classes_ is None:
        return b.op("Identity", [idx], "label", output=output)
    labels = b.const("classes", label_constant(net.classes_))
    return b.op("Gather", [labels, idx], "label", output=output, axis=0)


def _needed_ops(net):
    """The operators a model's graph uses, each with the part of the model that needs it."""
    ops = {"Gemm": "every layer", "Identity": "the outputs"}
    for l, act in enumerate(net.activations):
        if act in DOUBLE_OPS and net.dtype == np.float64:
            for op in DOUBLE_OPS[act]:
                ops.setdefault(op, f"hidden layer {l + 1}'s activation {act!r} in float64")
        elif ACTIVATION_OPS[act] is not None:
            ops.setdefault(ACTIVATION_OPS[act][0], f"hidden layer {l + 1}'s activation {act!r}")
    if net.output == "sigmoid":
        for op in SIGMOID_OUTPUT_OPS:
            ops.setdefault(op, "the output function 'sigmoid'")
    elif ACTIVATION_OPS[net.output] is not None:
        ops.setdefault(ACTIVATION_OPS[net.output][0], f"the output function {net.output!r}")
    if getattr(net, "categories", None) is not None:
        runs = _column_runs(net)
        ops.update({k: "the category encoding" for k in ("Gather", "Cast")})
        if len(runs) > 1:
            ops["Concat"] = "the category encoding"
        if any(labels is None for _, labels in runs):
            ops["Cast from text"] = "the numeric columns of the raw text rows"
    if net.input_mean is not None:
        ops.update({k: "the input standardisation" for k in ("Sub", "Div", "Cast")})
    if net.target_mean is not None:
        ops.update({k: "the target scaling" for k in ("Mul", "Add", "Cast")})
    if net.output == "softmax":
        ops["ArgMax"] = "the label"
    elif net.output == "sigmoid":
        ops.update({k: "the label" for k in ("Greater", "Cast", "Reshape")})
    if net.classes_ is not None:
        ops["Gather"] = "the class labels"
    return ops


def min_opset(net):
    """The lowest opset that expresses every operator of this model's graph."""
    return max(OP_SINCE[op] for op in _needed_ops(net))


def check_opset(net, opset):
    """``opset`` as an int, or the default; a clear error for one too old
    for the model's operators or newer than the onnx package knows."""
    import onnx
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, (bool, np.bool_)) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an integer ONNX opset version; got {opset!r}")
    opset = int(opset)
    lowest = min_opset(net)
    if opset < lowest:
        too_new = [f"{op} (for {why}) needs opset >= {OP_SINCE[op]}"
                   for op, why in _needed_ops(net).items() if OP_SINCE[op] > opset]
        raise ValueError(f"opset {opset} cannot express this model: {'; '.join(too_new)}; the"
                         f" lowest opset fastbp exports this model to is {lowest}")
    if opset > newest:
        raise ValueError(f"opset {opset} is newer than the installed onnx package knows"
                         f" (onnx {onnx.__version__}: opsets up to {newest})")
    return opset


# ---------------------------------------------------------------- the model
def _refuse_categories(net):
    """The skl2onnx converters take a numeric tensor from the pipeline
    before them; a network that one-hot encodes text columns of raw rows
    is exported by itself (:func:`to_onnx`), whose graph takes the text."""
    if getattr(net, "categories", None) is not None:
        raise ValueError(f"this network one-hot encodes the text columns"
                         f" {sorted(net.categories)} of its raw rows (net.categories); the"
                         f" skl2onnx converter takes numeric rows: export the network with"
                         f" net.to_onnx(), which takes the raw rows as text")


def check_input_dtype(net, input_dtype):
    """The dtype of the graph's numeric ``X``: the model's by default, or
    float32/float64 given (a model with categories takes text: None only)."""
    if input_dtype is None:
        return net.dtype
    if net.categories is not None:
        raise ValueError(f"a model with categories takes its raw rows as text; input_dtype"
                         f" must be None, got {input_dtype!r}")
    from ._args import DTYPES, check_dtype
    try:
        return np.dtype(DTYPES[check_dtype(input_dtype)])
    except (TypeError, ValueError):
        raise ValueError(f"input_dtype must be None (the model's dtype), 'float32' or"
                         f" 'float64'; got {input_dtype!r}") from None


# protobuf serialises a message of at most 2 GiB: an ONNX file's limit (its
# external data would lift it, for runtimes that read them; not offered).
PROTOBUF_LIMIT = 2 ** 31 - 1


def _too_large(net):
    """The error of a model beyond :data:`PROTOBUF_LIMIT`."""
    return ValueError(f"the model's {net.n_params:,} parameters take {net.params.nbytes / 2**30:.2f}"
                      f" GiB, and an ONNX file holds at most 2 GiB (protobuf's limit): it cannot"
                      f" be exported to ONNX (fastbp's own .npz holds it)")


def check_size(net):
    """Refuse a model too large for one ONNX file before building its graph
    (review HCF: protobuf's own EncodeError, without the reason, after
    copying every weight; and a traceback from ``fastbp export``). Its
    parameters alone, as the graph's initializers hold them: a model just
    under the limit with the rest is refused as it is serialised."""
    if net.params.nbytes > PROTOBUF_LIMIT:
        raise _too_large(net)


def build(net, opset=None, input_dtype=None):
    """The ONNX ``ModelProto`` of ``net``, checked by ``onnx.checker``."""
    onnx = require("onnx", "ONNX export")
    from google.protobuf.message import EncodeError
    from onnx import TensorProto, helper

    import fastbp
    x_dtype = check_input_dtype(net, input_dtype)
    opset = check_opset(net, opset)
    check_size(net)
    b = _Model(reserved=("X", "probabilities", "values", "label"))
    elem = _proto_type(net.dtype)
    if net.categories is None:
        x_info = helper.make_tensor_value_info("X", _proto_type(x_dtype), ["N", net.sizes[0]])
        x = _standardise(b, net, "X", x_dtype)
    else:  # raw rows as text, encoded in the graph
        x_info = helper.make_tensor_value_info("X", TensorProto.STRING, ["N", net.n_columns])
        x = _standardise(b, net, _encode(b, net, "X"), np.float64)
    out = _layers(b, net, x)
    n_out = net.sizes[-1]
    if net.output == "identity":
        _values(b, net, out, "values")
        outputs = [helper.make_tensor_value_info("values", elem, ["N", n_out])]
    else:
        b.op("Identity", [out], "probabilities", output="probabilities")
        _label(b, net, out, "label")
        label_shape = ["N"] if net.output == "softmax" or n_out == 1 else ["N", n_out]
        label_type = (TensorProto.INT64 if net.classes_ is None else
                      _proto_type(label_constant(net.classes_).dtype))
        outputs = [helper.make_tensor_value_info("label", label_type, label_shape),
                   helper.make_tensor_value_info("probabilities", elem, ["N", n_out])]
    graph = helper.make_graph(b.nodes, "fastbp_mlp", [x_info], outputs, b.initializers)
    opsets = [helper.make_opsetid("", opset)]
    if net.categories is not None:
        opsets.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="fastbp",
                              producer_version=fastbp.__version__,
                              # IR 4 and later let constants be initializers only
                              ir_version=max(helper.find_min_ir_version_for(opsets), 4))
    props = {"sizes": json.dumps(list(net.sizes)), "activations": json.dumps(list(net.activations)),
             "output": net.output, "dtype": net.dtype.name}
    if net.classes_ is not None:
        # (as the graph holds them: longdouble scalars are no JSON numbers)
        props["classes"] = json.dumps((label_constant(net.classes_)
                                       if net.classes_.dtype.kind == "f" else net.classes_).tolist())
    if net.categories is not None:
        props["categories"] = json.dumps({str(j): labels for j, labels in net.categories.items()})
        props["n_columns"] = str(net.n_columns)
    if net.metadata:   # (checked as save checks it: a dict of str keys, JSON values)
        props["metadata"] = _metadata_json(net.metadata)
    helper.set_model_props(model, props)
    try:
        onnx.checker.check_model(model, full_check=True)   # (serialises it)
    except EncodeError:   # (past the limit with the rest: the text labels, say)
        raise _too_large(net) from None
    return model


def to_onnx(net, path=None, opset=None, input_dtype=None):
    """See :meth:`fastbp.MLP.to_onnx`."""
    model = build(net, opset, input_dtype)   # (first: it names the extra if onnx is missing)
    from google.protobuf.message import EncodeError   # (onnx's; "No module named 'google'")
    try:
        data = model.SerializeToString()
    except EncodeError:
        raise _too_large(net) from None
    if path is None:
        return data
    from ._modelfile import write_atomically
    write_atomically(path, lambda fh: fh.write(data), "export the model", ".onnx.tmp")
    return None


# ------------------------------------------------------------------ skl2onnx
def _sklearn_labels(classes):
    """scikit-learn's classes_ as skl2onnx outputs them: int64 or text."""
    classes = np.asarray(classes)
    if classes.dtype.kind == "u" and classes.size and classes.max() > np.iinfo(np.int64).max:
        # (the cast wrapped: 2**63 + 5 came back as -9223372036854775803)
        raise ValueError(f"skl2onnx outputs int64 labels; the class {classes.max()} of this"
                         f" classifier's classes_ does not fit in int64 (the nocl option"
                         f" outputs class indices instead)")
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.all(classes == np.round(classes)):
        return classes.astype(np.int64)
    if classes.dtype.kind in "UO":
        return classes.astype(str)
    raise ValueError(f"skl2onnx outputs integer or text labels; this classifier's classes_ are"
                     f" {classes.dtype} {classes[:5].tolist()}")


def _network_for(b, net, x, x_dtype, cast=True):
    """The estimator's network on input x of dtype x_dtype (a float, int64 or
    bool); returns its output in :func:`_output_dtype` (the type skl2onnx's
    shape calculators promise), or with ``cast=False`` in the network's dtype."""
    _refuse_categories(net)
    if np.dtype(x_dtype) != net.dtype:  # integer and bool rows too
        x = _cast(b, x, net.dtype, "x_net")
    out = _layers(b, net, _standardise(b, net, x))
    if cast and _output_dtype(x_dtype) != net.dtype:
        out = _cast(b, out, _output_dtype(x_dtype), "out_cast")
    return out


def _estimator_net(est, outputs, x_dtype):
    """The network ``est.predict`` runs now on rows of ``x_dtype``
    (``coefs_``/``intercepts_`` and ``out_activation_`` assigned after fitting
    included; double and integer rows through a float32 network in a
    float64 copy, bool rows in float32: NumPy's result type of the rows and
    the weights, as predict and scikit-learn multiply them), if its output
    is one of ``outputs``; else ValueError."""
    if est.out_activation_ not in outputs:
        raise ValueError(f"the ONNX export of fastbp.sklearn.{type(est).__name__} covers"
                         f" out_activation_ {' or '.join(map(repr, outputs))}; this one has"
                         f" {est.out_activation_!r}")
    net = est._predicting_net()
    _refuse_categories(net)
    if net.dtype == np.float32 and np.result_type(x_dtype, np.float32) != np.float32:
        # (bool rows stay float32: since their label is taken before the
        # probabilities' cast, a float64 copy labelled a tie otherwise)
        from .sklearn import _twin
        net = _twin(net, dtype="float64")
    return net


def _input_dtype(operator):
    """The NumPy dtype of the converter's input rows: float64, float32, int64
    or bool (the types skl2onnx's linear shape calculators accept)."""
    from skl2onnx.common.data_types import (BooleanTensorType, DoubleTensorType,
                                            Int64TensorType)
    kind = operator.inputs[0].type
    for cls, dtype in ((DoubleTensorType, np.float64), (Int64TensorType, np.int64),
                       (BooleanTensorType, np.bool_)):
        if isinstance(kind, cls):
            return np.dtype(dtype)
    return np.dtype(np.float32)


def _output_dtype(x_dtype):
    """The outputs' dtype for rows of ``x_dtype``: double for double rows,
    float for the others (skl2onnx's shape calculators)."""
    return np.dtype(np.float64 if np.dtype(x_dtype) == np.float64 else np.float32)


def _multilabel(est):
    return getattr(getattr(est, "_label_binarizer", None), "y_type_",
                   None) == "multilabel-indicator"


def _check_fitted(est):
    # (skl2onnx's shape calculators said "No known ways to retrieve the number
    # of classes" or "no attribute 'n_outputs_'" of an unfitted estimator)
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(est, "net_", msg=f"this {type(est).__name__} is not fitted yet: call"
                                     f" fit(X, y) before converting it to ONNX")


def classifier_shapes(operator):
    """skl2onnx's shape calculator of linear classifiers, and a multilabel
    classifier's ``label`` of shape (N, n_labels), as its converter writes it."""
    from skl2onnx.common.data_types import Int64TensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    _check_fitted(operator.raw_operator)
    calculate_linear_classifier_output_shapes(operator)
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    if _multilabel(est):
        operator.outputs[0].set_type(Int64TensorType([n, len(est.classes_)]))
    elif len(est.classes_) == 1:   # predict_proba's two columns (scikit-learn's [1 - p, p])
        proba = operator.outputs[1]
        proba.set_type(type(proba.type)([n, 2]))


def regressor_shapes(operator):
    """skl2onnx's shape calculator of linear regressors, with ``variable`` of
    shape (N, n_outputs_) (it read a ``coef_`` the estimator lacks: (N, 1))."""
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    _check_fitted(operator.raw_operator)
    calculate_linear_regressor_output_shapes(operator)
    n = operator.inputs[0].get_first_dimension()
    out = operator.outputs[0]
    out.set_type(type(out.type)([n, operator.raw_operator.n_outputs_]))


def convert_classifier(scope, operator, container):
    """skl2onnx converter of fastbp.sklearn.MLPClassifier: outputs ``label``
    and ``probabilities`` (N, n_classes) as scikit-learn's classifiers do;
    with the ``nocl`` option, ``label`` is the class's index in ``classes_``
    (skl2onnx's meaning of it)."""
    est = operator.raw_operator
    b = _Container(scope, container)
    x_dtype = _input_dtype(operator)
    dtype = _output_dtype(x_dtype)
    label_out, proba_out = operator.outputs[0].full_name, operator.outputs[1].full_name
    net = _estimator_net(est, ("softmax", "logistic", "identity"), x_dtype)
    if (len(est.classes_) == 1 and not _multilabel(est)
            and container.get_options(est, dict(zipmap=True))["zipmap"] is not False):
        raise ValueError(f"fastbp.sklearn.MLPClassifier fitted on one class ({est.classes_[0]!r})"
                         " has two columns of probabilities, as scikit-learn's, and skl2onnx's"
                         " zipmap one per class: convert it with options={MLPClassifier:"
                         " {'zipmap': False}}")
    # The labels are taken in the network's dtype, as predict takes them, and
    # only the probabilities cast to skl2onnx's output type (cast first, a
    # float64 network's p = 0.5 + 2.5e-9 for float32 rows was labelled 0).
    out = _network_for(b, net, operator.inputs[0].full_name, x_dtype, cast=False)

    def probabilities(p):
        if dtype == net.dtype:
            return b.op("Identity", [p], "probabilities", output=proba_out)
        return b.op("Cast", [p], "probabilities", output=proba_out, to=_proto_type(dtype))

    if _multilabel(est):  # as skl2onnx's converter of scikit-learn's: each label p > 0.5, as int64
        probabilities(out)
        above = b.op("Greater", [out, b.const("half", np.array(0.5, dtype=net.dtype))], "above")
        b.op("Cast", [above], "label", output=label_out, to=7)   # TensorProto.INT64
        return
    if net.sizes[-1] == 1 and est.out_activation_ == "softmax":
        # (assigned after fitting: predict's softmax over one unit, 1 for a
        # finite logit, as scikit-learn's; the logit was taken for p)
        out = b.op("Softmax", [out], "softmax", axis=1)
    if net.sizes[-1] == 1:  # binary: one sigmoid unit p -> [1 - p, p]
        one = b.const("one", np.array(1.0, dtype=net.dtype))
        out = b.op("Concat", [b.op("Sub", [one, out], "p0"), out], "both", axis=1)
    probabilities(out)
    idx = b.op("ArgMax", [out], "class_index", axis=1, keepdims=0)
    if len(est.classes_) == 1:
        # Fitted on one class, predict gives it for every row, whatever p
        # (the index 1 of p > 0.5 was looked up in a classes_ of one).
        idx = b.op("Mul", [idx, b.const("zero", np.array(0, dtype=np.int64))], "only_class")
    if container.get_options(est, dict(nocl=False))["nocl"]:
        # (it was ignored: the label stayed the class, and text classes made
        # a model ONNX Runtime refused, skl2onnx having typed label int64)
        b.op("Identity", [idx], "label", output=label_out)
        return
    b.op("Gather", [b.const("classes", _sklearn_labels(est.classes_)), idx], "label",
         output=label_out, axis=0)


def convert_regressor(scope, operator, container):
    """skl2onnx converter of fastbp.sklearn.MLPRegressor: ``variable`` (N, n_outputs)."""
    est = operator.raw_operator
    if est.out_activation_ == "exp":
        # (a fit with loss='poisson' keeps its exp output through
        # set_params(loss='squared_error') until the next fit, as predict does)
        why = ("loss='poisson' (an exp output)" if est.loss == "poisson" else
               "out_activation_ 'exp' (from a fit with loss='poisson', or assigned after"
               " fitting)")
        raise ValueError("the ONNX export of fastbp.sklearn.MLPRegressor covers the identity"
                         f" output of loss='squared_error'; this one has {why}")
    x_dtype = _input_dtype(operator)
    net = _estimator_net(est, ("identity",), x_dtype)
    b = _Container(scope, container)
    out = _network_for(b, net, operator.inputs[0].full_name, x_dtype)
    b.op("Identity", [out], "variable", output=operator.outputs[0].full_name)


def register_skl2onnx():
    """Register fastbp.sklearn's MLPClassifier and MLPRegressor with skl2onnx,
    so that ``skl2onnx.to_onnx`` converts pipelines holding them (the
    classifier with skl2onnx's ``zipmap`` and ``nocl`` options). Done on
    import of :mod:`fastbp.sklearn` when skl2onnx is importable; call it
    yourself after replacing skl2onnx's registry."""
    require("skl2onnx", "Converting fastbp estimators with skl2onnx")
    from skl2onnx import update_registered_converter

    from skl2onnx._parse import _parse_sklearn_classifier

    from .sklearn import MLPClassifier, MLPRegressor

    def parse_classifier(scope, model, inputs, custom_parsers=None):
        # skl2onnx's parser of classifiers, which reads classes_ before any
        # shape calculator runs (skl2onnx's examples of a parser call it so)
        _check_fitted(model)
        return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)
    update_registered_converter(MLPClassifier, "FastbpMLPClassifier", classifier_shapes,
                                convert_classifier, parser=parse_classifier,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(MLPRegressor, "FastbpMLPRegressor", regressor_shapes,
                                convert_regressor)
