"""tflm_train.convert for CNNs: every supported convolution, pooling, padding,
batch-norm and residual pattern converts, runs in real TFLM (and stock TFLite)
like Keras, and carries a plan with the right ops, options, names, trainable
flags and weights. (What the trainer cannot run is refused by name:
tests/test_convert_cnn_refused.py.)

These tests need only the converter and the pip TFLM runtime, not the C++
trainer; MicroTrainer checks on these models belong with the C++ conv kernels."""


import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.converter import keras_model
from tflm_train.errors import ConversionError

import cnn_models as C
import helpers as H

L = keras.layers

# Inference tolerance, as in test_convert.py: the same float32 graph in Keras and in
# TFLM's reference kernels differs only in summation order and exp/tanh; the largest
# fan-in here is 3*3*12 = 108, so an output carries a few hundred float32 roundings
# (eps 1.2e-7) on O(1) values: ~1e-5 in the worst case, ~1e-7 observed.
INFER_RTOL = 1e-5
INFER_ATOL = 1e-5


# --- the models ----------------------------------------------------------------------------

def _conv2d_options():
    return keras.Sequential([
        keras.Input((10, 10, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu", name="c_same"),
        L.Conv2D(5, 3, strides=2, activation="relu6", name="c_stride2"),
        L.Conv2D(4, 2, dilation_rate=2, padding="same", name="c_dilated"),
        L.Conv2D(3, (2, 3), strides=(1, 2), padding="same", activation="sigmoid", name="c_sigmoid"),
        L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out")])


def _depthwise():
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw_m1"),
        L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, activation="tanh", name="dw_m2"),
        L.Flatten(name="flat"),
        L.Dense(2, activation="sigmoid", name="out")])


def _separable():
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        L.SeparableConv2D(6, 3, padding="same", activation="relu", name="sep_a"),
        L.SeparableConv2D(4, 3, depth_multiplier=2, strides=2, use_bias=False, name="sep_b"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(3, activation="softmax", name="out")])


def _conv1d():
    return keras.Sequential([
        keras.Input((16, 3)),
        L.ZeroPadding1D((2, 1), name="zp"),
        L.Conv1D(4, 3, activation="relu", name="c1"),
        L.MaxPooling1D(2, name="mp"),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, name="c_causal"),
        L.AveragePooling1D(2, padding="same", name="ap"),
        L.GlobalAveragePooling1D(name="gap"),
        L.Dense(2, name="out")])


def _pooling2d():
    return keras.Sequential([
        keras.Input((9, 9, 2)),
        L.Conv2D(4, 1, name="c"),
        L.MaxPooling2D(2, name="mp_valid"),                                  # 9 -> 4
        L.MaxPooling2D(3, strides=1, padding="same", name="mp_same"),       # 4 -> 4
        L.AveragePooling2D(3, strides=2, padding="same", name="ap_same"),   # 4 -> 2
        L.AveragePooling2D(2, name="ap_valid"),                              # 2 -> 1
        L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out")])


def _global_pool_keepdims_2d():
    return keras.Sequential([
        keras.Input((6, 6, 3)),
        L.Conv2D(4, 3, activation="relu", name="c"),
        L.GlobalAveragePooling2D(keepdims=True, name="gap"),
        L.Flatten(name="flat"),
        L.Dense(2, name="out")])


def _global_pool_keepdims_1d():
    return keras.Sequential([
        keras.Input((10, 3)),
        L.Conv1D(4, 3, activation="relu6", name="c"),
        L.GlobalAveragePooling1D(keepdims=True, name="gap"),
        L.Flatten(name="flat"),
        L.Dense(2, name="out")])


def _zero_padding2d():
    return keras.Sequential([
        keras.Input((5, 5, 2)),
        L.ZeroPadding2D(((1, 2), (0, 1)), name="zp_a"),
        L.Conv2D(3, 3, name="c"),
        L.ZeroPadding2D(1, name="zp_b"),
        L.MaxPooling2D(2, name="mp"),
        L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out")])


def _batchnorm():
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        L.Conv2D(6, 3, use_bias=False, name="c"), L.BatchNormalization(name="bn_c"), L.ReLU(name="relu_c"),
        L.DepthwiseConv2D(3, padding="same", name="dw"), L.BatchNormalization(name="bn_dw"),
        L.ReLU(6.0, name="relu6_dw"),
        L.SeparableConv2D(4, 3, name="sep"), L.BatchNormalization(name="bn_sep"),
        L.Flatten(name="flat"),
        L.Dense(5, name="d"), L.BatchNormalization(name="bn_d"), L.Activation("relu", name="relu_d"),
        L.Dense(3, activation="softmax", name="out")])


def _inverted_residual():
    """A MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 project, residual Add."""
    inp = keras.Input((8, 8, 3), name="x")
    stem = L.Conv2D(4, 3, padding="same", use_bias=False, name="stem")(inp)
    stem = L.ReLU(6.0, name="stem_relu")(L.BatchNormalization(name="stem_bn")(stem))
    h = L.Conv2D(12, 1, use_bias=False, name="expand")(stem)
    h = L.ReLU(6.0, name="expand_relu")(L.BatchNormalization(name="expand_bn")(h))
    h = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)
    h = L.ReLU(6.0, name="dw_relu")(L.BatchNormalization(name="dw_bn")(h))
    h = L.Conv2D(4, 1, use_bias=False, name="project")(h)
    h = L.BatchNormalization(name="project_bn")(h)
    h = L.Add(name="residual")([stem, h])
    h = L.ReLU(name="add_relu")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, L.Dense(3, activation="softmax", name="out")(h), name="inverted_residual")


# name -> (builder, loss, plan op kinds in order, fused activation of each weight op,
#          (pad_before, pad_after) of each Pad op in order)
CASES = {
    "conv2d_options": (
        _conv2d_options, "sparse_categorical_crossentropy",
        ["CONV_2D", "CONV_2D", "CONV_2D", "CONV_2D", "LOGISTIC", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
        {"c_same": "relu", "c_stride2": "relu6", "c_dilated": "none", "c_sigmoid": "none", "out": "none"}, []),
    "depthwise": (
        _depthwise, "binary_crossentropy",
        ["DEPTHWISE_CONV_2D", "DEPTHWISE_CONV_2D", "TANH", "RESHAPE", "FULLY_CONNECTED", "LOGISTIC"],
        {"dw_m1": "relu", "dw_m2": "none", "out": "none"}, []),
    "separable": (
        _separable, "sparse_categorical_crossentropy",
        ["DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"],
        {"sep_a/depthwise": "none", "sep_a/pointwise": "relu", "sep_b/depthwise": "none",
         "sep_b/pointwise": "none", "out": "none"}, []),
    "conv1d": (
        _conv1d, "mse",
        ["PAD", "RESHAPE", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "PAD", "RESHAPE", "CONV_2D", "AVERAGE_POOL_2D",
         "RESHAPE", "MEAN", "FULLY_CONNECTED"],
        {"c1": "relu", "c_causal": "none", "out": "none"},
        [((0, 2, 0), (0, 1, 0)), ((0, 4, 0), (0, 0, 0))]),  # ZeroPadding1D; causal padding (3-1)*2
    "pooling2d": (
        _pooling2d, "categorical_crossentropy",
        # The Flatten of the 1x1x4 map vanishes: FULLY_CONNECTED flattens its input itself.
        ["CONV_2D", "MAX_POOL_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"],
        {"c": "none", "out": "none"}, []),
    "global_pool_keepdims_2d": (
        _global_pool_keepdims_2d, "mse",
        ["CONV_2D", "MEAN", "FULLY_CONNECTED"], {"c": "relu", "out": "none"}, []),
    "global_pool_keepdims_1d": (
        _global_pool_keepdims_1d, "mse",
        ["RESHAPE", "CONV_2D", "RESHAPE", "MEAN", "FULLY_CONNECTED"], {"c": "relu6", "out": "none"}, []),
    "zero_padding2d": (
        _zero_padding2d, "sparse_categorical_crossentropy",
        ["PAD", "CONV_2D", "PAD", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
        {"c": "none", "out": "none"},
        [((0, 1, 0, 0), (0, 2, 1, 0)), ((0, 1, 1, 0), (0, 1, 1, 0))]),
    "batchnorm": (
        _batchnorm, "sparse_categorical_crossentropy",
        ["CONV_2D", "DEPTHWISE_CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED",
         "SOFTMAX"],
        {"c": "relu", "dw": "relu6", "sep/depthwise": "none", "sep/pointwise": "none", "d": "relu", "out": "none"},
        []),
    "inverted_residual": (
        _inverted_residual, "sparse_categorical_crossentropy",
        ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"],
        {"stem": "relu6", "expand": "relu6", "dw": "relu6", "project": "none", "out": "none"}, []),
}


def _build(name, seed=0):
    keras.utils.set_random_seed(seed)
    model = CASES[name][0]()
    C.randomize(model, np.random.default_rng(seed + 100))
    return model


@pytest.fixture(scope="module")
def converted():
    """name -> (keras model, model bytes), converted once for the module."""
    out = {}
    for name, (_, loss, *_) in CASES.items():
        model = _build(name)
        out[name] = (model, H.convert(model, loss))
    return out


def _inputs(model, n=8, seed=0):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(0.0, 1.0, (n,) + shape).astype(np.float32)


def _tflite_predict(model_bytes, x):
    """Stock TFLite (TensorFlow's interpreter), one sample at a time."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=bytes(model_bytes))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    outs = []
    for sample in x:
        interpreter.set_tensor(inp, sample[None])
        interpreter.invoke()
        outs.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(outs)


# --- inference ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_converted_cnn_runs_in_tflm_like_keras(converted, name):
    model, model_bytes = converted[name]
    x = _inputs(model)
    want = model.predict(x, verbose=0)
    got = H.tflm_predict(model_bytes, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=INFER_RTOL, atol=INFER_ATOL)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@pytest.mark.parametrize("name", list(CASES))
def test_converted_cnn_runs_in_stock_tflite(converted, name):
    """Stock TFLite needs a bias tensor on every CONV_2D / DEPTHWISE_CONV_2D, also for
    layers without a bias (the converter keeps a frozen zero bias there)."""
    model, model_bytes = converted[name]
    x = _inputs(model, n=4, seed=1)
    np.testing.assert_allclose(_tflite_predict(model_bytes, x), model.predict(x, verbose=0),
                               rtol=INFER_RTOL, atol=INFER_ATOL)


# --- the plan -------------------------------------------------------------------------------

def _keras_conv_options(unit):
    """(stride, dilation, padding, depth multiplier) that the unit's Keras layer asks for."""
    config = unit.layer.get_config()
    if unit.kind == "separable_pointwise":
        return (1, 1), (1, 1), "valid", 1
    padding = {"same": "same", "valid": "valid", "causal": "valid"}[config["padding"]]  # causal: a Pad op first
    if unit.kind == "conv1d":  # runs as a 1 x K Conv2D
        return (1, config["strides"][0]), (1, config["dilation_rate"][0]), padding, 1
    multiplier = config.get("depth_multiplier", 1) if "depthwise" in unit.kind else 1
    return tuple(config["strides"]), tuple(config["dilation_rate"]), padding, multiplier


def _keras_pool_options(layer):
    """(filter, stride, padding) of a Keras pooling layer, as TFLite's 2-D pooling runs it."""
    config = layer.get_config()
    pool, strides = tuple(config["pool_size"]), tuple(config["strides"] or config["pool_size"])
    if len(pool) == 1:
        pool, strides = (1,) + pool, (1,) + strides
    return pool, strides, config["padding"]


@pytest.mark.parametrize("name", list(CASES))
def test_plan_ops_have_kinds_options_and_names(converted, name):
    model, model_bytes = converted[name]
    _, _, kinds, activations, pads = CASES[name]
    info = tflm_train.read_model_info(model_bytes)
    assert [op.kind for op in info.ops] == kinds, [op.kind for op in info.ops]

    units = keras_model.weight_units(model)
    weight_ops = [op for op in info.ops if op.weight_shape is not None]
    assert [op.name for op in weight_ops] == [u.name for u in units]
    assert {op.name: op.activation for op in weight_ops} == activations
    for op, unit in zip(weight_ops, units):
        assert op.trainable, op.name
        if unit.kind != "dense":
            stride, dilation, padding, multiplier = _keras_conv_options(unit)
            assert (op.stride, op.dilation, op.padding, op.depth_multiplier) == (stride, dilation, padding,
                                                                                  multiplier), op.name

    pool_layers = [layer for layer in keras_model.flat_layers(model) if "Pooling" in type(layer).__name__
                   and "Global" not in type(layer).__name__]
    pool_ops = [op for op in info.ops if op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D")]
    assert len(pool_ops) == len(pool_layers)
    for op, layer in zip(pool_ops, pool_layers):
        assert op.kind[:3] == type(layer).__name__[:3].upper()
        assert (op.filter, op.stride, op.padding) == _keras_pool_options(layer), layer.name

    assert [(op.pad_before, op.pad_after) for op in info.ops if op.kind == "PAD"] == pads


@pytest.mark.parametrize("name", list(CASES))
def test_weights_in_file_are_our_folded_values(converted, name):
    """Each weight op holds exactly unit.tflite_kernel(kernel) and the folded bias
    (TensorFlow folds batch norm with its own rounding; the file must hold ours, the
    values the reference trainer starts from)."""
    model, model_bytes = converted[name]
    want = H.keras_unit_weights(model)
    H.assert_weights_close(H.weights_from_bytes(model_bytes), want, rtol=0, atol=0, context=name)
    bias_size = {op.name: op.bias_size for op in tflm_train.read_model_info(model_bytes).ops}
    for unit_name, (_, bias) in want.items():
        assert bias_size[unit_name] == (0 if bias is None else bias.size), unit_name


@pytest.mark.parametrize("name", list(CASES))
def test_every_weight_and_bias_tensor_is_private(converted, name):
    """Weights, biases and the frozen zero biases of bias-less convolutions: each tensor
    is read by one op and owns its buffer, so training one never changes another."""
    from tensorflow.lite.tools import flatbuffer_utils

    _, model_bytes = converted[name]
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    sg = graph.subgraphs[0]
    readers, owners = {}, {}
    for op in sg.operators:
        for t in op.inputs:
            readers[t] = readers.get(t, 0) + 1
    for t in sg.tensors:
        owners[t.buffer] = owners.get(t.buffer, 0) + 1
    for op, info in zip(sg.operators, tflm_train.read_model_info(model_bytes).ops):
        if info.weights is None:
            continue
        weights, bias = int(op.inputs[1]), int(op.inputs[2]) if len(op.inputs) > 2 else -1
        for t in (weights, bias):
            if t >= 0:
                assert readers[t] == 1 and owners[sg.tensors[t].buffer] == 1, sg.tensors[t].name
        if info.bias is None and bias >= 0:  # a bias-less convolution's frozen zero bias
            data = np.frombuffer(bytes(bytearray(graph.buffers[sg.tensors[bias].buffer].data)), np.float32)
            assert not np.any(data)


def test_depthwise_parameter_count():
    model = _build("depthwise")
    info = tflm_train.read_model_info(H.convert(model, "binary_crossentropy"))
    dw = {op.name: op for op in info.ops}
    assert dw["dw_m1"].weight_shape == (1, 3, 3, 3) and dw["dw_m1"].parameters == 27 + 3
    assert dw["dw_m2"].weight_shape == (1, 3, 3, 6) and dw["dw_m2"].parameters == 54 + 6
    assert dw["dw_m2"].options == "3x3/2 valid m2"


# --- tricky graphs --------------------------------------------------------------------------

def test_identical_kernels_match_in_keras_order():
    """Two convolutions with equal constant kernels (TensorFlow's converter shares one
    tensor between them) but different biases: each op gets its own layer's name,
    kernel tensor and bias, in order."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((5, 5, 3)),
        L.Conv2D(3, 1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(0.1), name="c_a"),
        L.Conv2D(3, 1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(-0.2), name="c_b"),
        L.Flatten(), L.Dense(2, name="out")])
    model_bytes = H.convert(model, "mse", trainable=["c_a"])
    info = tflm_train.read_model_info(model_bytes)
    assert [(op.name, op.trainable) for op in info.ops if op.weight_shape] == [
        ("c_a", True), ("c_b", False), ("out", False)]
    weights = H.weights_from_bytes(model_bytes)
    np.testing.assert_array_equal(weights["c_a"][1], np.full(3, 0.1, np.float32))
    np.testing.assert_array_equal(weights["c_b"][1], np.full(3, -0.2, np.float32))
    from tensorflow.lite.tools import flatbuffer_utils

    operators = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes)).subgraphs[0].operators
    assert operators[0].inputs[1] != operators[1].inputs[1]
    x = _inputs(model, n=3)
    np.testing.assert_allclose(H.tflm_predict(model_bytes, x), model.predict(x, verbose=0),
                               rtol=INFER_RTOL, atol=INFER_ATOL)


def _frozen_prefix_model():
    model = _build("batchnorm", seed=5)
    model.get_layer("c").trainable = False
    model.get_layer("dw").trainable = False
    return model


@pytest.mark.parametrize("trainable, expect", [
    (None, {"sep/depthwise", "sep/pointwise", "d", "out"}),      # Keras' flags: c and dw frozen
    (2, {"d", "out"}),
    (3, {"sep/depthwise", "sep/pointwise", "d", "out"}),         # a SeparableConv2D counts once
    (["sep"], {"sep/depthwise", "sep/pointwise"}),
    (["c", "out"], {"c", "out"}),
])
def test_trainable_selects_weight_units(trainable, expect):
    model = _frozen_prefix_model()
    model_bytes = H.convert(model, trainable=trainable)
    info = tflm_train.read_model_info(model_bytes)
    assert {op.name for op in info.trainable_layers} == expect
    assert all(not op.trainable for op in info.ops if op.weight_shape is None)
    x = _inputs(model, n=3)
    np.testing.assert_allclose(H.tflm_predict(model_bytes, x), model.predict(x, verbose=0),
                               rtol=INFER_RTOL, atol=INFER_ATOL)


@pytest.mark.parametrize("trainable", [0, 7, ["sep/depthwise"], ["bn_c"]])
def test_bad_trainable_is_refused(trainable):
    with pytest.raises(ConversionError):
        H.convert(_frozen_prefix_model(), trainable=trainable)
