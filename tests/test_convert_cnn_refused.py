"""tflm_train.convert refuses, by name, the CNNs the trainer cannot run: layers and
batch-norm placements it cannot fold or train (named with the layer's name and class),
an Add that broadcasts, and TFLite graphs TensorFlow's converter could produce but the
trainer cannot run (made by editing a converted graph by hand), with the unedited graph
as the control. (What converts, and how: tests/test_convert_cnn.py.)

These tests need only the converter, not the C++ trainer."""

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.converter import keras_model, tflite_graph
from tflm_train.errors import ConversionError

import helpers as H

L = keras.layers


# --- refused -------------------------------------------------------------------------------

def _bn_after_relu_conv():
    return keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, activation="relu", name="c"),
                             L.BatchNormalization(name="my_bn"), L.Flatten(), L.Dense(2, name="out")])


def _bn_after_pool():
    return keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, name="c"), L.MaxPooling2D(name="mp"),
                             L.BatchNormalization(name="my_bn"), L.Flatten(), L.Dense(2, name="out")])


def _bn_first():
    return keras.Sequential([keras.Input((6, 6, 2)), L.BatchNormalization(name="my_bn"), L.Conv2D(3, 3, name="c"),
                             L.Flatten(), L.Dense(2, name="out")])


def _bn_after_shared_conv():
    inp = keras.Input((6, 6, 2))
    c = L.Conv2D(2, 3, padding="same", name="c")(inp)
    h = L.Add(name="add")([L.BatchNormalization(name="my_bn")(c), c])
    return keras.Model(inp, L.Dense(2, name="out")(L.Flatten()(h)))


def _grouped_conv():
    return keras.Sequential([keras.Input((6, 6, 4)), L.Conv2D(4, 3, groups=2, name="my_grouped"),
                             L.Flatten(), L.Dense(2, name="out")])


def _channels_first_conv():
    return keras.Sequential([keras.Input((2, 6, 6)), L.Conv2D(4, 3, data_format="channels_first", name="my_cf"),
                             L.Flatten(), L.Dense(2, name="out")])


def _channels_first_pool():
    return keras.Sequential([keras.Input((2, 6, 6)), L.AveragePooling2D(2, data_format="channels_first",
                                                                        name="my_cf_pool"),
                             L.Flatten(), L.Dense(2, name="out")])


def _conv3d():
    return keras.Sequential([keras.Input((4, 4, 4, 1)), L.Conv3D(2, 3, name="my_conv3d"), L.Flatten(),
                             L.Dense(2, name="out")])


def _bn_after_tanh_depthwise():
    return keras.Sequential([keras.Input((6, 6, 2)), L.DepthwiseConv2D(3, activation="tanh", name="dw"),
                             L.BatchNormalization(name="my_bn"), L.Flatten(), L.Dense(2, name="out")])


@pytest.mark.parametrize("builder, layer_name, layer_type", [
    (_bn_after_relu_conv, "my_bn", "BatchNormalization"),
    (_bn_after_tanh_depthwise, "my_bn", "BatchNormalization"),
    (_bn_after_pool, "my_bn", "BatchNormalization"),
    (_bn_first, "my_bn", "BatchNormalization"),
    (_bn_after_shared_conv, "my_bn", "BatchNormalization"),
    (_grouped_conv, "my_grouped", "Conv2D"),
    (_channels_first_conv, "my_cf", "Conv2D"),
    (_channels_first_pool, "my_cf_pool", "AveragePooling2D"),
    (_conv3d, "my_conv3d", "Conv3D"),
])
def test_unsupported_cnn_layer_is_named(builder, layer_name, layer_type):
    with pytest.raises(ConversionError) as info:
        H.convert(builder(), "mse")
    assert f"'{layer_name}'" in str(info.value)
    assert f"({layer_type})" in str(info.value)


@pytest.mark.parametrize("other_shape", [(1, 1, 2), (4, 4, 1)])
def test_broadcasting_add_is_refused_by_name(other_shape):
    """Keras' Add broadcasts; the trainer's Add takes two equal shapes."""
    inp = keras.Input((4, 4, 2))
    full = L.Conv2D(2, 1, name="c_full")(inp)
    kernel = (4 - other_shape[0] + 1, 4 - other_shape[1] + 1)
    other = L.Conv2D(other_shape[2], kernel, name="c_other")(inp)
    h = L.Add(name="my_broadcast_add")([full, other])
    model = keras.Model(inp, L.Dense(2, name="out")(L.Flatten()(h)))
    with pytest.raises(ConversionError) as info:
        H.convert(model, "mse")
    assert "my_broadcast_add" in str(info.value) and "broadcast" in str(info.value)


# --- TFLite graphs Keras cannot make, edited by hand ----------------------------------------

def _pad_conv_mean_model():
    # Asymmetric padding: TensorFlow folds a ZeroPadding2D(1) + 3x3 VALID conv into one SAME conv.
    return keras.Sequential([keras.Input((6, 6, 2)), L.ZeroPadding2D(((1, 2), (0, 1)), name="zp"),
                             L.Conv2D(3, 3, name="c"),
                             L.GlobalAveragePooling2D(name="gap"), L.Dense(2, name="out")])


def _op_of(graph, op_name):
    return next(op for op in graph.subgraphs[0].operators if tflite_graph._op_name(graph, op) == op_name)


def _set_constant(graph, index, values):
    tensor = graph.subgraphs[0].tensors[index]
    tensor.shape = np.array(np.shape(values), np.int32)
    graph.buffers[tensor.buffer].data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)


def _rename_op(graph, op_name, new_name):
    code = graph.operatorCodes[_op_of(graph, op_name).opcodeIndex]
    number = getattr(tflite_graph._schema().BuiltinOperator, new_name)
    code.builtinCode, code.deprecatedBuiltinCode = number, min(number, 127)


def _mean_over_rows_only(graph):
    _set_constant(graph, int(_op_of(graph, "MEAN").inputs[1]), np.array([1], np.int32))


def _pad_the_batch(graph):
    _set_constant(graph, int(_op_of(graph, "PAD").inputs[1]), np.array([[1, 0], [1, 2], [0, 1], [0, 0]], np.int32))


def _conv_fused_tanh(graph):
    _op_of(graph, "CONV_2D").builtinOptions.fusedActivationFunction = 4


@pytest.mark.parametrize("edit, message", [
    (lambda g: _rename_op(g, "PAD", "PADV2"), "PADV2"),
    (lambda g: _rename_op(g, "PAD", "MIRROR_PAD"), "MIRROR_PAD"),
    (lambda g: _rename_op(g, "MEAN", "SUM"), "SUM"),
    (_mean_over_rows_only, "MEAN"),
    (_pad_the_batch, "PAD"),
    (_conv_fused_tanh, "fused activation"),
])
def test_convert_refuses_what_the_trainer_cannot_run(edit, message, monkeypatch):
    """What TensorFlow's converter could produce and the trainer cannot run is refused
    by name (the trainer's own registry and validation decide)."""
    model = _pad_conv_mean_model()
    graph = tflite_graph.read(keras_model.to_tflite(model))
    edit(graph)
    edited = tflite_graph.write(graph)
    monkeypatch.setattr(keras_model, "to_tflite", lambda m: edited)
    with pytest.raises(ConversionError) as info:
        tflm_train.convert(model, loss="mse", optimizer=tflm_train.SGD(0.1))
    assert message in str(info.value)


def test_convert_accepts_the_unedited_graph():
    """The control for the test above: the same graph, unedited, converts."""
    model = _pad_conv_mean_model()
    info = tflm_train.read_model_info(tflm_train.convert(model, loss="mse", optimizer=tflm_train.SGD(0.1)))
    assert [op.kind for op in info.ops] == ["PAD", "CONV_2D", "MEAN", "FULLY_CONNECTED"]
    assert (info.ops[0].pad_before, info.ops[0].pad_after) == ((0, 1, 0, 0), (0, 2, 1, 0))
