"""tflm_train.convert: converted models run in real TFLM and in the C++ trainer
with Keras' outputs; unsupported layers are refused by name; biases and
`trainable=` behave."""

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.errors import ConversionError

import helpers as H

# Inference tolerance: the same float32 graph evaluated by Keras (oneDNN), TFLM's
# reference kernels and the C++ trainer differs only in summation order and in
# exp/tanh implementations. With fan-ins <= 32 and O(1) activations, each output
# carries at most ~100 float32 roundings (eps 1.2e-7), i.e. about 1e-5 absolute in
# the worst case; the observed differences are ~1e-7.
INFER_RTOL = 1e-5
INFER_ATOL = 1e-5


@pytest.fixture(scope="module")
def battery():
    """name -> (keras model, loss, model bytes), converted once for the module."""
    out = {}
    for name in H.BATTERY:
        model, loss = H.build_battery_model(name)
        out[name] = (model, loss, H.convert(model, loss))
    return out


def _inputs(model, n=16, seed=0):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(0.0, 1.0, (n,) + shape).astype(np.float32)


@pytest.mark.parametrize("name", list(H.BATTERY))
def test_converted_model_runs_in_tflm_like_keras(battery, name):
    model, _, model_bytes = battery[name]
    x = _inputs(model)
    want = model.predict(x, verbose=0)
    got = H.tflm_predict(model_bytes, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=INFER_RTOL, atol=INFER_ATOL)


@pytest.mark.parametrize("name", list(H.BATTERY))
def test_microtrainer_predict_matches_keras(battery, name):
    model, _, model_bytes = battery[name]
    x = _inputs(model, seed=1)
    want = model.predict(x, verbose=0)
    got = tflm_train.MicroTrainer(model_bytes).predict(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=INFER_RTOL, atol=INFER_ATOL)


@pytest.mark.parametrize("name", list(H.BATTERY))
def test_model_info_describes_the_keras_model(battery, name):
    model, loss, model_bytes = battery[name]
    info = tflm_train.read_model_info(model_bytes)
    assert info.version == 3
    assert tuple(info.input_shape) == (1,) + tuple(model.inputs[0].shape[1:])
    assert tuple(info.output_shape) == (1,) + tuple(model.outputs[0].shape[1:])
    assert info.loss == {"mse": "mean_squared_error"}.get(loss, loss)
    dense = [layer for layer in H._flat_layers(model) if isinstance(layer, keras.layers.Dense)]
    fc = [op for op in info.ops if op.kind == "FULLY_CONNECTED"]
    assert [op.name for op in fc] == [layer.name for layer in dense]
    for op, layer in zip(fc, dense):
        assert op.weight_shape == (layer.units, layer.kernel.shape[0])
        assert op.has_bias == layer.use_bias
        assert op.trainable
    # The weights inside the file are exactly Keras' (transposed to [out, in]).
    got = H.weights_from_bytes(model_bytes)
    H.assert_weights_close(got, H.keras_weights(model), rtol=0, atol=0, context=name)


@pytest.mark.parametrize("name", list(H.BATTERY))
def test_trained_bytes_still_run_in_tflm(battery, name):
    """After training steps the weights changed in place and TFLM infers with them."""
    model, loss, model_bytes = battery[name]
    rng = np.random.default_rng(3)
    out_dim = int(np.prod(model.outputs[0].shape[1:]))
    x, y = H.make_data(loss, 8, model.inputs[0].shape[1:], out_dim, rng)
    if loss != "sparse_categorical_crossentropy":
        y = y.reshape((8,) + tuple(model.outputs[0].shape[1:]))
    trainer = tflm_train.MicroTrainer(model_bytes)
    for i in range(4):
        trainer.train_step(x[2 * i:2 * i + 2], y[2 * i:2 * i + 2])
    assert trainer.model_bytes != model_bytes
    x_test = _inputs(model, seed=4)
    got = H.tflm_predict(trainer.model_bytes, x_test)
    np.testing.assert_allclose(got, trainer.predict(x_test), rtol=INFER_RTOL, atol=INFER_ATOL)
    # ... and differs from the untrained model's outputs.
    assert np.abs(got - model.predict(x_test, verbose=0)).max() > 1e-4


# --- unsupported layers --------------------------------------------------------------------

def _lstm():
    return keras.Sequential([keras.Input((6, 2)), keras.layers.LSTM(4, name="my_lstm"),
                             keras.layers.Dense(3, activation="softmax")])


def _leaky():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.LeakyReLU(name="my_leaky"),
                             keras.layers.Dense(3, activation="softmax")])


def _dense_elu():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="elu", name="my_elu_dense"),
                             keras.layers.Dense(3, activation="softmax")])


def _relu_negative_slope():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5),
                             keras.layers.ReLU(negative_slope=0.1, name="my_sloped_relu"),
                             keras.layers.Dense(3, activation="softmax")])


def _activation_gelu():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Activation("gelu", name="my_gelu"),
                             keras.layers.Dense(3, activation="softmax")])


def _batch_norm_after_relu():
    # Batch norm folds only into a linear layer before it (see test_convert_cnn.py).
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                             keras.layers.BatchNormalization(name="my_bn"),
                             keras.layers.Dense(3, activation="softmax")])


def _dense_rank3():
    return keras.Sequential([keras.Input((3, 4)), keras.layers.Dense(5, name="my_rank3_dense"), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


def _softmax_axis():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(6), keras.layers.Reshape((2, 3)),
                             keras.layers.Softmax(axis=1, name="my_axis1_softmax"), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("builder, layer_name, layer_type", [
    (_lstm, "my_lstm", "LSTM"),
    (_leaky, "my_leaky", "LeakyReLU"),
    (_dense_elu, "my_elu_dense", "Dense"),
    (_relu_negative_slope, "my_sloped_relu", "ReLU"),
    (_activation_gelu, "my_gelu", "Activation"),
    (_batch_norm_after_relu, "my_bn", "BatchNormalization"),
    (_dense_rank3, "my_rank3_dense", "Dense"),
    (_softmax_axis, "my_axis1_softmax", "Softmax"),
])
def test_unsupported_layer_is_named(builder, layer_name, layer_type):
    model = builder()
    with pytest.raises(ConversionError) as info:
        H.convert(model)
    message = str(info.value)
    assert f"'{layer_name}'" in message
    assert f"({layer_type})" in message


@pytest.mark.parametrize("final, loss", [
    ("sigmoid", "sparse_categorical_crossentropy"),
    ("linear", "categorical_crossentropy"),
    ("softmax", "binary_crossentropy"),
    ("tanh", "binary_crossentropy"),
])
def test_loss_that_does_not_fit_the_model_is_refused(final, loss):
    model = H.mlp(4, [5], 3, final_activation=final)
    with pytest.raises(ConversionError):
        H.convert(model, loss)


@pytest.mark.parametrize("loss", ["hinge", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                  keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                                  keras.losses.Huber()])
def test_unsupported_loss_is_refused(loss):
    with pytest.raises(ConversionError):
        H.convert(H.mlp(4, [5], 3), loss)


def test_keras_loss_and_optimizer_objects_are_read():
    model = H.mlp(4, [5], 3)
    model_bytes = tflm_train.convert(model, loss=keras.losses.CategoricalCrossentropy(),
                                     optimizer=keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=0.001))
    info = tflm_train.read_model_info(model_bytes)
    assert info.loss == "categorical_crossentropy"
    assert info.optimizer.learning_rate == pytest.approx(0.05, rel=1e-7)
    assert info.optimizer.momentum == pytest.approx(0.9, rel=1e-7)
    assert info.optimizer.weight_decay == pytest.approx(0.001, rel=1e-6)
    with pytest.raises(tflm_train.ConversionError, match="only SGD"):
        tflm_train.convert(model, loss="mse", optimizer=keras.optimizers.Adam(0.01))


# --- biases --------------------------------------------------------------------------------

def test_fresh_zero_biases_train_and_are_seen_by_tflm():
    """Keras initializes biases to zero; TensorFlow's converter may drop or share an
    all-zero bias. Every bias must still be trainable, own its buffer, and be wired
    into the FULLY_CONNECTED op that TFLM runs."""
    keras.utils.set_random_seed(7)
    # Three layers with 8 outputs: their zero biases are identical constants.
    model = H.mlp(6, [8, 8], 8, hidden_activation="relu", final_activation="softmax")
    assert all(not np.any(layer.bias.numpy()) for layer in model.layers)
    model_bytes = H.convert(model, optimizer=tflm_train.SGD(0.5))
    before = H.weights_from_bytes(model_bytes)
    assert set(before) == {"d0", "d1", "out"}
    for name, (_, b) in before.items():
        assert b is not None and b.shape == (8,) and not np.any(b), name

    trainer = tflm_train.MicroTrainer(model_bytes)
    x = np.random.default_rng(0).normal(size=(1, 6)).astype(np.float32)
    trainer.train_step(x, np.array([3]))
    after = H.weights_from_bytes(trainer.model_bytes)
    for name, (_, b) in after.items():
        assert np.count_nonzero(b) > 0, f"bias of {name} did not train"
    # Each bias trained to its own values (no shared buffer).
    assert not np.array_equal(after["d0"][1], after["d1"][1])
    assert not np.array_equal(after["d1"][1], after["out"][1])
    # Keras' step from the same weights gives the same biases.
    ref = H.KerasReference(model, tflm_train.SGD(0.5), "sparse_categorical_crossentropy")
    ref.step(x, np.array([3]))
    # Tolerance: one float32 step, see test_training_parity.py.
    H.assert_weights_close(after, H.keras_weights(model), rtol=1e-5, atol=1e-6)
    # TFLM infers with the trained biases.
    x_test = np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32)
    np.testing.assert_allclose(H.tflm_predict(trainer.model_bytes, x_test), trainer.predict(x_test),
                               rtol=INFER_RTOL, atol=INFER_ATOL)
    np.testing.assert_allclose(trainer.predict(x_test), model.predict(x_test, verbose=0),
                               rtol=INFER_RTOL, atol=INFER_ATOL)


def test_use_bias_false_has_no_bias():
    model = H.build_battery_model("relu_layers_no_bias")[0]
    model_bytes = H.convert(model, "binary_crossentropy")
    assert all(b is None for _, b in H.weights_from_bytes(model_bytes).values())
    assert not any(op.has_bias for op in tflm_train.read_model_info(model_bytes).ops)


# --- trainable= -------------------------------------------------------------------------------

def _frozen_fixture_model():
    # d0, d1, d2 have the same width, so their fresh zero biases are identical
    # constants that the TFLite converter may put in one shared buffer.
    return H.mlp(6, [8, 8, 8], 3, seed=11)


def _fit(model_bytes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(24, 6)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    trainer = tflm_train.MicroTrainer(model_bytes)
    trainer.fit(x, y, epochs=2, batch_size=4, verbose=0)
    return trainer


@pytest.mark.parametrize("trainable, expect_trained", [
    (["d1", "out"], {"d1", "out"}),
    (["d0", "d2"], {"d0", "d2"}),
    ("d1", {"d1"}),
    (2, {"d2", "out"}),
    (1, {"out"}),
    (4, {"d0", "d1", "d2", "out"}),
])
def test_trainable_selects_layers_and_frozen_weights_do_not_change(trainable, expect_trained):
    model = _frozen_fixture_model()
    model_bytes = H.convert(model, trainable=trainable)
    info = tflm_train.read_model_info(model_bytes)
    assert {op.name for op in info.trainable_layers} == expect_trained
    before = H.weights_from_bytes(model_bytes)
    trainer = _fit(model_bytes)
    after = H.weights_from_bytes(trainer.model_bytes)
    for name in before:
        (wb, bb), (wa, ba) = before[name], after[name]
        if name in expect_trained:
            assert not np.array_equal(wa, wb), f"kernel of trainable {name} did not change"
            assert not np.array_equal(ba, bb), f"bias of trainable {name} did not change"
        else:
            np.testing.assert_array_equal(wa, wb, err_msg=f"kernel of frozen {name} changed")
            np.testing.assert_array_equal(ba, bb, err_msg=f"bias of frozen {name} changed")
    # The TFLM runtime sees exactly those weights.
    x_test = np.random.default_rng(5).normal(size=(8, 6)).astype(np.float32)
    np.testing.assert_allclose(H.tflm_predict(trainer.model_bytes, x_test), trainer.predict(x_test),
                               rtol=INFER_RTOL, atol=INFER_ATOL)


def test_trainable_none_respects_keras_trainable_flag():
    model = _frozen_fixture_model()
    model.get_layer("d0").trainable = False
    model.get_layer("d2").trainable = False
    model_bytes = H.convert(model)
    assert {op.name for op in tflm_train.read_model_info(model_bytes).trainable_layers} == {"d1", "out"}
    before = H.weights_from_bytes(model_bytes)
    after = H.weights_from_bytes(_fit(model_bytes).model_bytes)
    for name in ("d0", "d2"):
        np.testing.assert_array_equal(after[name][0], before[name][0])
        np.testing.assert_array_equal(after[name][1], before[name][1])
    assert not np.array_equal(after["d1"][0], before["d1"][0])


@pytest.mark.parametrize("trainable", [0, 5, -1, ["nope"], ["d0", "missing"], []])
def test_bad_trainable_is_refused(trainable):
    with pytest.raises(ConversionError):
        H.convert(_frozen_fixture_model(), trainable=trainable)


# --- graphs TensorFlow's converter rewrites ----------------------------------------------------

@pytest.mark.parametrize("final", ["softmax", "sigmoid", "tanh", "linear"])
def test_linear_dense_followed_by_dense_converts(final):
    """Dense(linear) -> Dense is a plain supported MLP. With nonzero biases (any model
    trained in Keras first), TensorFlow's converter folds the linear layer's bias into
    the next layer's bias (b2' = W2 b1 + b2) and drops the first bias; the trainable
    file must still hold each Keras layer's own weights and train like Keras."""
    model = H.mlp(6, [8, 5], 3, hidden_activation=["relu", "linear"], final_activation=final, seed=21)
    H.randomize_biases(model, np.random.default_rng(21))
    loss = {"softmax": "sparse_categorical_crossentropy", "sigmoid": "binary_crossentropy"}.get(final, "mse")
    model_bytes = H.convert(model, loss)
    x = _inputs(model, n=8, seed=22)
    np.testing.assert_allclose(H.tflm_predict(model_bytes, x), model.predict(x, verbose=0),
                               rtol=INFER_RTOL, atol=INFER_ATOL)
    H.assert_weights_close(H.weights_from_bytes(model_bytes), H.keras_weights(model), rtol=0, atol=0)


def test_identical_constant_biases_frozen_layer_stays_frozen():
    """bias_initializer=Constant(0.1) in two Dense layers of equal width: TensorFlow's
    converter makes both FULLY_CONNECTED ops read one bias tensor. Training only d1
    must leave the frozen d0 (kernel and bias) untouched."""
    keras.utils.set_random_seed(23)
    init = keras.initializers.Constant(0.1)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(6, activation="relu", bias_initializer=init, name="d0"),
        keras.layers.Dense(6, activation="relu", bias_initializer=init, name="d1"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    model_bytes = H.convert(model, trainable=["d1", "out"])
    before = H.weights_from_bytes(model_bytes)
    trainer = tflm_train.MicroTrainer(model_bytes)
    x = np.random.default_rng(24).normal(size=(4, 6)).astype(np.float32)
    for i in range(4):
        trainer.train_step(x[i:i + 1], np.array([i % 3]))
    after = H.weights_from_bytes(trainer.model_bytes)
    np.testing.assert_array_equal(after["d0"][0], before["d0"][0], err_msg="kernel of frozen d0 changed")
    np.testing.assert_array_equal(after["d0"][1], before["d0"][1], err_msg="bias of frozen d0 changed")
    assert not np.array_equal(after["d1"][1], before["d1"][1])


def test_converted_file_has_no_orphaned_buffers():
    """The converter un-shares constants and writes the plan twice (measure, then final);
    neither may leave dead data in the file: every non-empty buffer is used by a tensor or
    the metadata, and every weight/bias tensor owns its buffer."""
    from tensorflow.lite.tools import flatbuffer_utils

    keras.utils.set_random_seed(31)
    init = keras.initializers.Constant(0.1)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(6, activation="relu", bias_initializer=init, name="d0"),
        keras.layers.Dense(6, activation="relu", bias_initializer=init, name="d1"),
        keras.layers.Dense(5, activation="linear", bias_initializer=init, name="lin"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(H.convert(model)))
    used = {t.buffer for s in graph.subgraphs for t in s.tensors} | {m.buffer for m in graph.metadata}
    for i, b in enumerate(graph.buffers):
        if b.data is not None and len(b.data):
            assert i in used, f"buffer {i} ({len(b.data)} bytes) is referenced by nothing"
    users = {}
    for t in graph.subgraphs[0].tensors:
        users[t.buffer] = users.get(t.buffer, 0) + 1
    for op in graph.subgraphs[0].operators:
        if len(op.inputs) >= 2:  # FULLY_CONNECTED weights and bias (RESHAPE's shape too)
            for t in op.inputs[1:]:
                if t >= 0 and graph.subgraphs[0].tensors[t].buffer:
                    assert users[graph.subgraphs[0].tensors[t].buffer] == 1
