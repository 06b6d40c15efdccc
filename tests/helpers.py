"""Helpers shared by the tests: model builders, a reader for the weights inside
a trainable .tflite, the real TFLM runtime as inference oracle, and a Keras
GradientTape reference trainer."""

import numpy as np

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


class KerasReference:
    """Keras' own training step: GradientTape + keras.optimizers.SGD, as the
    C++ trainer must reproduce it."""

    def __init__(self, model, sgd, loss, training=True):
        self.model = model
        self.training = training  # False for models with Dropout (the converter drops it)
        self.optimizer = sgd.to_keras()
        self.loss_fn = keras_loss(loss)
        self.optimizer.build(model.trainable_variables)

    def learning_rate(self):
        return float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    def step(self, x, y):
        with tf.GradientTape() as tape:
            out = self.model(tf.constant(x), training=self.training)
            loss = self.loss_fn(tf.constant(y), out)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return float(loss)


def assert_weights_close(got, want, rtol, atol, context=""):
    assert sorted(got) == sorted(want), f"{context}: layers {sorted(got)} != {sorted(want)}"
    for name in want:
        (gw, gb), (ww, wb) = got[name], want[name]
        np.testing.assert_allclose(gw, ww, rtol=rtol, atol=atol, err_msg=f"{context}: kernel of {name}")
        assert (gb is None) == (wb is None), f"{context}: bias presence of {name}"
        if wb is not None:
            np.testing.assert_allclose(gb, wb, rtol=rtol, atol=atol, err_msg=f"{context}: bias of {name}")


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
