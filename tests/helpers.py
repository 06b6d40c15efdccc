"""Helpers shared by the tests: model builders and data, a reader for the weights
inside a trainable .tflite, the real TFLM runtime as inference oracle, the tests'
one full-backprop training-step oracle (KerasReference: tf.GradientTape + Keras
SGD), and the CNN parity loop of the C++ trainer against the reference trainer."""

import functools

import numpy as np
import pytest

import keras
import tensorflow as tf

import tflm_train

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "mse", "binary_crossentropy")
# The final activation each loss needs (cross-entropies are computed from the cached logits).
FINAL_ACTIVATION = {
    "sparse_categorical_crossentropy": "softmax",
    "categorical_crossentropy": "softmax",
    "mse": "linear",
    "binary_crossentropy": "sigmoid",
}


def mlp(input_dim, hidden, outputs, *, hidden_activation="relu", final_activation="softmax", name="mlp",
        seed=None):
    """A Sequential MLP with Dense layers named d0, d1, ... and 'out'."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    layers = [keras.Input((input_dim,))]
    acts = hidden_activation if isinstance(hidden_activation, (list, tuple)) else [hidden_activation] * len(hidden)
    for i, (units, act) in enumerate(zip(hidden, acts)):
        layers.append(keras.layers.Dense(units, activation=act, name=f"d{i}"))
    layers.append(keras.layers.Dense(outputs, activation=final_activation, name="out"))
    return keras.Sequential(layers, name=name)


def randomize_biases(model, rng, scale=0.1):
    """Fresh Dense layers have zero biases; give them values so tests see them."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense) and layer.use_bias:
            layer.bias.assign(rng.normal(0.0, scale, layer.bias.shape).astype(np.float32))


def plan_bytes(model_bytes):
    """The training plan inside a .tflite, found with TensorFlow's own reader (tests only)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    for entry in model.metadata or []:
        if entry.name == b"tflm_train":
            return bytes(bytearray(model.buffers[entry.buffer].data))
    return None


def plan_field_position(raw, field):
    """Where scalar field `field` (its schema id) of the plan's root table sits, or None."""
    import struct

    table = struct.unpack_from("<I", raw, 0)[0]
    vtable = table - struct.unpack_from("<i", raw, table)[0]
    slot = 4 + 2 * field
    if slot >= struct.unpack_from("<H", raw, vtable)[0]:
        return None
    offset = struct.unpack_from("<H", raw, vtable + slot)[0]
    return table + offset if offset else None


def weights_from_bytes(model_bytes):
    """{layer name: (W in TFLite's layout, bias or None)} for every weight op, as the
    C++ trainer reads them from the .tflite (what it wrote)."""
    out = {}
    for op in tflm_train.read_model_info(model_bytes).ops:
        if op.weights is not None:
            out[op.name] = (np.asarray(op.weights).reshape(op.weight_shape).copy(),
                            None if op.bias is None else np.asarray(op.bias).copy())
    return out


def keras_weights(model):
    """{Dense layer name: (W[out, in], bias or None)} of a Keras model (TFLite layout)."""
    out = {}
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.Dense):
            w = np.asarray(layer.kernel.numpy(), np.float32).T
            b = np.asarray(layer.bias.numpy(), np.float32) if layer.use_bias else None
            out[layer.name] = (w, b)
    return out


def _flat_layers(model):
    out = []
    for layer in model.layers:
        out.extend(_flat_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def tflm_predict(model_bytes, x):
    """Runs every sample of x through the pip tflite-micro runtime (real TFLM)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes))
    outs = []
    for sample in np.asarray(x, np.float32):
        interpreter.set_input(sample[None], 0)
        interpreter.invoke()
        outs.append(np.array(interpreter.get_output(0), np.float32)[0])
    return np.stack(outs)


def keras_loss(loss):
    return {
        "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy(),
        "categorical_crossentropy": keras.losses.CategoricalCrossentropy(),
        "mse": keras.losses.MeanSquaredError(),
        "binary_crossentropy": keras.losses.BinaryCrossentropy(),
    }[loss]


def make_data(loss, n, input_shape, outputs, rng):
    """Inputs ~ N(0, 1) and labels of the kind each loss takes."""
    x = rng.normal(0.0, 1.0, (n,) + tuple(input_shape)).astype(np.float32)
    if loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, outputs, n).astype(np.int64)
    elif loss == "categorical_crossentropy":
        y = np.eye(outputs, dtype=np.float32)[rng.integers(0, outputs, n)]
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, (n, outputs)).astype(np.float32)
    else:
        y = rng.normal(0.0, 1.0, (n, outputs)).astype(np.float32)
    return x, y


def class_data(input_shape, classes, samples, seed):
    """Gaussian inputs; labels from a fixed random linear map (a learnable signal).
    Returns (x, labels as float32, one-hot labels)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples,) + tuple(input_shape)).astype(np.float32)
    w = rng.normal(size=(int(np.prod(input_shape)), classes)).astype(np.float32)
    labels = np.argmax(x.reshape(samples, -1) @ w, axis=1)
    return x, labels.astype(np.float32), np.eye(classes, dtype=np.float32)[labels]


def random_data(model, loss, samples, seed):
    """Gaussian inputs for `model` and random targets: class indices (float32) for sparse
    cross-entropy, else Gaussian targets of the output's width (MSE)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])
    x = rng.normal(size=(samples,) + shape).astype(np.float32)
    labels = rng.integers(0, classes, samples)
    if loss == "sparse_categorical_crossentropy":
        return x, labels.astype(np.float32)
    return x, rng.normal(0.0, 1.0, (samples, classes)).astype(np.float32)


def clone(model):
    """An independent copy of a Keras model with the same weights."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def keras_predict(model, x):
    """Keras' outputs, one sample at a time (batch 1, as TFLM runs them). TensorFlow
    2.21's oneDNN convolution returns garbage for some batched shapes (e.g. a 1x5 kernel
    with strides (1, 3) over a 5x5x1 input at batch 4 differs from the same samples at
    batch 1 by up to 1e35), so the oracle never batches."""
    return np.concatenate([np.asarray(model(x[i:i + 1], training=False), np.float32) for i in range(len(x))])


class KerasReference:
    """The tests' one full-backprop training-step oracle: Keras' own step, as the C++
    trainer (and, on plain models, the reference trainer) must reproduce it.

    Each step runs a tf.GradientTape through the Keras model one sample at a time
    (batch 1, as TFLM runs it; see keras_predict), averages the per-sample gradients
    over the batch (the gradient of the batch's mean loss), and keras.optimizers.SGD
    (sgd.to_keras(): momentum, weight decay and schedule included) applies them. step()
    returns the batch's mean loss, computed before the update. The optimizer lives as
    long as this object, so momentum and the schedule's step counter carry over from
    step to step. The model runs in inference mode (training=False), as the converted
    file does: Dropout is the identity and batch norm uses its moving statistics.

    `variables` (default: the model's trainable variables) restricts the update to a
    subset; the other weights take part in the forward and backward pass unchanged."""

    def __init__(self, model, sgd, loss, variables=None):
        self.model = model
        self.variables = list(model.trainable_variables if variables is None else variables)
        self.optimizer = sgd.to_keras()
        self.loss_fn = keras_loss(loss)
        self.optimizer.build(self.variables)

    def learning_rate(self):
        """The rate the next step will use."""
        return float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    def step(self, x, y):
        total, losses = None, []
        for i in range(len(x)):
            with tf.GradientTape() as tape:
                value = self.loss_fn(tf.constant(y[i:i + 1]), self.model(tf.constant(x[i:i + 1]), training=False))
            grads = tape.gradient(value, self.variables)
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
            losses.append(float(value))
        self.optimizer.apply([g / float(len(x)) for g in total], self.variables)
        return float(np.mean(losses))


def assert_weights_close(got, want, rtol, atol, context=""):
    assert sorted(got) == sorted(want), f"{context}: layers {sorted(got)} != {sorted(want)}"
    for name in want:
        (gw, gb), (ww, wb) = got[name], want[name]
        np.testing.assert_allclose(gw, ww, rtol=rtol, atol=atol, err_msg=f"{context}: kernel of {name}")
        assert (gb is None) == (wb is None), f"{context}: bias presence of {name}"
        if wb is not None:
            np.testing.assert_allclose(gb, wb, rtol=rtol, atol=atol, err_msg=f"{context}: bias of {name}")


def keras_unit_weights(model):
    """{unit name: (kernel in TFLite layout, bias or None)} of the Keras model (every
    weight unit the converter makes: Dense, convolutions, both halves of a separable)."""
    from tflm_train.converter.keras_model import weight_units

    out = {}
    for unit in weight_units(model):
        kernel, bias = unit.values()
        out[unit.name] = (unit.tflite_kernel(kernel), bias)
    return out


WEIGHT_RTOL = 1e-5


def assert_close_to_scale(got, want, rtol=WEIGHT_RTOL, context=""):
    """Every kernel and bias within rtol of its tensor's scale (max |w|), elementwise.
    A convolution's weight gradient sums over every output position, so its rounding
    is relative to the tensor, not to each weight."""
    assert sorted(got) == sorted(want), f"{context}: units {sorted(got)} != {sorted(want)}"
    for name, (w_want, b_want) in want.items():
        w_got, b_got = got[name]
        for what, g, w in (("kernel", w_got, w_want), ("bias", b_got, b_want)):
            if w is None:
                assert g is None, f"{context}: {name} has a {what} it should not"
                continue
            scale = float(np.max(np.abs(w)))
            np.testing.assert_allclose(g, w, rtol=0, atol=rtol * scale,
                                       err_msg=f"{context}: {what} of {name} (scale {scale:.3g})")


def _weights_differ(micro, ref):
    from tflm_train.reference import micro_weights

    try:
        assert_close_to_scale(micro_weights(micro.model_bytes), ref.get_weights(layout="micro"))
    except AssertionError as e:
        return str(e)
    return None


def run_parity(micro, ref, x, y, steps, max_resync_share=0.25):
    """The CNN parity loop of a MicroTrainer against a ReferenceTrainer: trains both
    sample by sample; k, skips and MACs must be identical and the weights close after
    every step, except where the reference flagged a float32 near-tie that step (then
    it takes over the C++'s state). Returns the flags used."""
    from tflm_train.reference import micro_weights

    resyncs = []
    for i in range(steps):
        a = micro.train_step(x[i:i + 1], y[i:i + 1])
        b = ref.train_step(x[i:i + 1], y[i:i + 1])
        flagged = [amb for amb in ref.ambiguities if amb["step"] == i]
        decisions = (np.array_equal(a.sample_k, b.sample_k) and
                     np.array_equal(a.sample_skipped, b.sample_skipped) and
                     a.forward_macs == b.forward_macs and a.backward_macs == b.backward_macs)
        problem = None if decisions else (f"k {np.asarray(a.sample_k).tolist()} vs {np.asarray(b.sample_k).tolist()}, "
                                          f"skipped {a.skipped} vs {b.skipped}, MACs {a.forward_macs}/"
                                          f"{a.backward_macs} vs {b.forward_macs}/{b.backward_macs}")
        problem = problem or _weights_differ(micro, ref)
        if problem is not None:
            assert flagged, f"step {i}: {problem} (Ymax C++ {micro.ymax}, reference {ref.ymax}); nothing flagged"
            resyncs.append((i, flagged[0]["kind"]))
            ref.set_weights(micro_weights(micro.model_bytes))
            ref.ymax = micro.ymax
        assert a.loss == pytest.approx(b.loss, rel=1e-4, abs=1e-6), f"step {i} loss"
    assert len(resyncs) <= steps * max_resync_share, f"too many near-ties: {resyncs}"
    np.testing.assert_allclose(micro.ymax, ref.ymax, rtol=1e-5)
    return resyncs


def convert(model, loss="sparse_categorical_crossentropy", optimizer=None, **kwargs):
    return tflm_train.convert(model, loss=loss, optimizer=optimizer or tflm_train.SGD(0.1), **kwargs)


# --- the conversion battery -------------------------------------------------------------
# Each entry: name -> (builder, loss). Builders return a built Keras model whose
# biases are random (set by the caller) and use every supported layer kind.

def _seq(*layers, name):
    return keras.Sequential(list(layers), name=name)


def _battery_mlp():
    return _seq(keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="h"),
                keras.layers.Dense(4, activation="softmax", name="out"), name="mlp")


def _battery_flatten_2d():
    return _seq(keras.Input((4, 5)), keras.layers.Flatten(name="flat"),
                keras.layers.Dense(8, activation="tanh", name="h"),
                keras.layers.Dense(3, activation="sigmoid", name="out"), name="flatten_2d")


def _battery_reshape_softmax_rows():
    return _seq(keras.Input((6,)), keras.layers.Dense(12, activation="relu6", name="h"),
                keras.layers.Reshape((3, 4), name="rows"), keras.layers.Softmax(name="row_softmax"),
                keras.layers.Flatten(name="flat"), keras.layers.Dense(2, activation="linear", name="out"),
                name="reshape_softmax_rows")


def _battery_activation_layers_dropout():
    return _seq(keras.Input((10,)), keras.layers.Dense(10, name="h0"), keras.layers.Activation("relu", name="a0"),
                keras.layers.Dropout(0.3, name="drop"), keras.layers.Dense(6, name="h1"),
                keras.layers.Activation("tanh", name="a1"), keras.layers.Dense(5, name="h2"),
                keras.layers.Activation("sigmoid", name="a2"), keras.layers.Activation("linear", name="a3"),
                keras.layers.Dense(3, name="out"), keras.layers.Softmax(name="probs"),
                name="activation_layers_dropout")


def _battery_relu_layers_no_bias():
    return _seq(keras.Input((9,)), keras.layers.Dense(7, use_bias=False, name="h0"), keras.layers.ReLU(name="r0"),
                keras.layers.Dense(5, use_bias=False, name="h1"), keras.layers.ReLU(max_value=6.0, name="r1"),
                keras.layers.Dense(2, activation="sigmoid", use_bias=False, name="out"),
                name="relu_layers_no_bias")


def _battery_functional():
    inp = keras.Input((10,), name="x")
    h = keras.layers.Dense(8, activation="relu6", name="h0")(inp)
    h = keras.layers.Dense(8, activation="sigmoid", name="h1")(h)
    h = keras.layers.Dropout(0.2, name="drop")(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(inp, out, name="functional")


def _battery_deep_regression():
    return _seq(keras.Input((5,)), keras.layers.Dense(32, activation="tanh", name="h0"),
                keras.layers.Dense(16, activation="linear", name="h1"),
                keras.layers.Dense(8, activation="relu", name="h2"),
                keras.layers.Dense(1, name="out"), name="deep_regression")


def _battery_reshape_input():
    return _seq(keras.Input((12,)), keras.layers.Reshape((3, 4), name="to_3x4"), keras.layers.Flatten(name="flat"),
                keras.layers.Dense(6, activation="relu", name="h"),
                keras.layers.Dense(4, activation="softmax", name="out"), name="reshape_input")


BATTERY = {
    "mlp": (_battery_mlp, "sparse_categorical_crossentropy"),
    "flatten_2d": (_battery_flatten_2d, "binary_crossentropy"),
    "reshape_softmax_rows": (_battery_reshape_softmax_rows, "mse"),
    "activation_layers_dropout": (_battery_activation_layers_dropout, "categorical_crossentropy"),
    "relu_layers_no_bias": (_battery_relu_layers_no_bias, "binary_crossentropy"),
    "functional": (_battery_functional, "sparse_categorical_crossentropy"),
    "deep_regression": (_battery_deep_regression, "mse"),
    "reshape_input": (_battery_reshape_input, "categorical_crossentropy"),
}


def build_battery_model(name, seed=0):
    keras.utils.set_random_seed(seed)
    builder, loss = BATTERY[name]
    model = builder()
    randomize_biases(model, np.random.default_rng(seed + 100))
    return model, loss


# --- the reference-parity MLPs -----------------------------------------------------------
# Three MLPs for the parity of the C++ trainer with the reference trainer
# (test_reference_parity.py, test_policy_arithmetic.py).

def mlp_a(loss):
    """20-16-8-4, ReLU, Dense with fused activations."""
    out = "softmax" if loss != "mse" else "linear"
    return keras.Sequential([
        keras.Input((20,)),
        keras.layers.Dense(16, activation="relu", name="a1"),
        keras.layers.Dense(8, activation="relu", name="a2"),
        keras.layers.Dense(4, activation=out, name="a3"),
    ], name="mlp_a")


def mlp_b(loss):
    """64-32-10, tanh, a Dropout (identity at conversion), Functional."""
    inputs = keras.Input((64,))
    h = keras.layers.Dense(32, activation="tanh", name="b1")(inputs)
    h = keras.layers.Dropout(0.3, name="drop")(h)
    out = keras.layers.Dense(10, activation="softmax" if loss != "mse" else "linear", name="b2")(h)
    return keras.Model(inputs, out, name="mlp_b")


def mlp_c(loss):
    """30-12-6-3 from a (5, 6) input: Flatten, sigmoid, separate ReLU6 and output
    Activation layers; with MSE the output stays a softmax (gradient through it)."""
    return keras.Sequential([
        keras.Input((5, 6)),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(12, activation="sigmoid", name="c1"),
        keras.layers.Dense(6, name="c2"),
        keras.layers.ReLU(max_value=6.0, name="c2_relu6"),
        keras.layers.Dense(3, name="c3"),
        keras.layers.Activation("softmax", name="c3_softmax"),
    ], name="mlp_c")


PARITY_MLPS = {"mlp_a": (mlp_a, (20,), 4), "mlp_b": (mlp_b, (64,), 10), "mlp_c": (mlp_c, (5, 6), 3)}
PARITY_SAMPLES = 200


def build_parity_mlp(name, loss, seed=0):
    """(model, x, y): PARITY_MLPS[name] with Keras' seeded initial weights and
    PARITY_SAMPLES samples of class_data (class indices, or one-hot targets for MSE)."""
    keras.utils.set_random_seed(seed)
    fn, shape, classes = PARITY_MLPS[name]
    model = fn(loss)
    x, labels, onehot = class_data(shape, classes, PARITY_SAMPLES, seed)
    return model, x, (labels if loss != "mse" else onehot)


# --- the small model of the bad-input tests ------------------------------------------------

BAD_INPUT_OUTPUTS = 3


@functools.cache
def bad_input_model():
    """(keras model, trainable file) shared by test_bad_model.py and test_bad_input.py:
    Flatten of a (2, 3) input, Dense/relu, Dense + tanh layer, softmax output; the file
    with SGD(0.1, momentum 0.9) and batch size 4. Built once per test run; tests must not
    change the Keras model."""
    keras.utils.set_random_seed(31)
    model = keras.Sequential([
        keras.Input((2, 3)),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(8, activation="relu", name="d0"),
        keras.layers.Dense(5, name="d1"),
        keras.layers.Activation("tanh", name="act"),
        keras.layers.Dense(BAD_INPUT_OUTPUTS, activation="softmax", name="out"),
    ])
    randomize_biases(model, np.random.default_rng(31))
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(0.1, momentum=0.9), batch_size=4)
    return model, model_bytes


@pytest.fixture(scope="module")
def keras_model():
    """The Keras model of bad_input_model (a fixture: import it into the test module)."""
    return bad_input_model()[0]


@pytest.fixture(scope="module")
def model_bytes():
    """The trainable file of bad_input_model (a fixture: import it into the test module)."""
    return bad_input_model()[1]
