"""tflm_train.convert_tflite: a plain float .tflite made by TensorFlow's own converter
(no Keras model at hand) gets a training plan; it trains like `convert` of the same
Keras model, stock TFLM runs it as it ran the input, `trainable` picks the right ops and
what the trainer cannot take is refused in one sentence naming the op."""

import copy

import numpy as np
import pytest

import keras
import tensorflow as tf

import tflm_train
from tflm_train.converter import tflite_graph
from tflm_train.errors import ConversionError

import helpers as H

LOSS = "sparse_categorical_crossentropy"


def _sgd():
    return tflm_train.SGD(0.1, momentum=0.5)


def _with_random_biases(model, seed=0):
    """Fresh layers have zero biases, which TensorFlow's converter drops from
    FULLY_CONNECTED; deployed models have real ones."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
    return model


def _cnn():
    return _with_random_biases(keras.Sequential([
        keras.Input((10, 10, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(2),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw"),
        keras.layers.Conv2D(6, 1, name="conv_b"),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="out")], name="cnn"))


def _gap_net():
    return _with_random_biases(keras.Sequential([
        keras.Input((8, 8, 2)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax", name="out")], name="gap"))


def tflite_fixed_batch(model, *, representative=None, dynamic_range=False):
    """What a TFLM user deploys: TensorFlow's converter on the model at batch size 1
    (optionally quantized to full int8 with a representative dataset, or dynamic-range)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([convert_variables_to_constants_v2(function)])
    if representative is not None or dynamic_range:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative is not None:
        converter.representative_dataset = lambda: ([x[None]] for x in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def _x(model, n, seed=0):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(0.0, 1.0, (n,) + shape).astype(np.float32)


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(7)
    model = _cnn()
    return model, tflite_fixed_batch(model)


def _trainable_names(model_bytes):
    return [op.name for op in tflm_train.read_model_info(model_bytes).trainable_layers]


def _weight_op_names(model_bytes):
    return [op.name for op in tflm_train.read_model_info(model_bytes).ops if op.weight_shape is not None]


# --- the result trains as `convert` of the same Keras model, and TFLM runs it ---------------

@pytest.mark.parametrize("trainable", [None, 2])
def test_one_step_matches_convert_of_the_keras_model(cnn, trainable):
    model, plain = cnn
    ours = tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd(), trainable=trainable)
    theirs = tflm_train.convert(model, loss=LOSS, optimizer=_sgd(), trainable=trainable)
    a, b = tflm_train.MicroTrainer(ours), tflm_train.MicroTrainer(theirs)
    assert len(a.get_weights()) == len(b.get_weights()) == (10 if trainable is None else 4)
    for w_a, w_b in zip(a.get_weights(), b.get_weights()):  # the same start
        np.testing.assert_allclose(w_a, w_b, rtol=0, atol=1e-6)
    x, y = _x(model, 3, seed=1), np.array([0, 2, 1])
    for i in range(3):
        step_a, step_b = a.train_step(x[i:i + 1], y[i:i + 1]), b.train_step(x[i:i + 1], y[i:i + 1])
        assert step_a.loss == pytest.approx(step_b.loss, rel=1e-6, abs=1e-7)
        for w_a, w_b in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(w_a, w_b, rtol=0, atol=1e-6)
    assert np.abs(a.get_weights()[-1] - tflm_train.MicroTrainer(ours).get_weights()[-1]).max() > 1e-4  # it moved


def test_tflm_runs_the_result_as_it_ran_the_input(cnn):
    model, plain = cnn
    x = _x(model, 8, seed=2)
    ours = tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd())
    np.testing.assert_allclose(H.tflm_predict(ours, x), H.tflm_predict(plain, x), rtol=0, atol=1e-6)
    trainer = tflm_train.MicroTrainer(ours)
    np.testing.assert_allclose(trainer.predict(x), H.tflm_predict(plain, x), rtol=1e-5, atol=1e-6)
    trainer.fit(x, np.arange(8) % 3, epochs=2, verbose=0)
    np.testing.assert_allclose(H.tflm_predict(trainer.model_bytes, x), trainer.predict(x), rtol=1e-5, atol=1e-6)


def test_keras_default_converter_file_with_a_dynamic_batch(tmp_path):
    """TFLiteConverter.from_keras_model leaves the batch dynamic (shape_signature -1),
    which is accepted; a path works as well as bytes."""
    keras.utils.set_random_seed(8)
    model = _gap_net()
    path = tmp_path / "gap.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    ours = tflm_train.convert_tflite(str(path), loss=LOSS, optimizer=_sgd(), trainable=1)
    assert [op.kind for op in tflm_train.read_model_info(ours).trainable_layers] == ["FULLY_CONNECTED"]
    x = _x(model, 4, seed=3)
    np.testing.assert_allclose(tflm_train.MicroTrainer(ours).predict(x), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert tflm_train.convert_tflite(path, loss=LOSS, optimizer=_sgd(), trainable=1) == ours


# --- trainable= -----------------------------------------------------------------------

def test_trainable_last_n_and_by_name(cnn):
    _, plain = cnn
    every = tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd())
    names = _weight_op_names(every)
    assert len(names) == 5 and _trainable_names(every) == names
    kinds = [op.kind for op in tflm_train.read_model_info(every).ops if op.weight_shape is not None]
    assert kinds == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    for n in (1, 3, 5):
        assert _trainable_names(tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd(), trainable=n)) \
            == names[-n:]
    # The full output tensor name (Netron's), and one ';'-part of it.
    chosen = tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd(), trainable=[names[1], names[3]])
    assert _trainable_names(chosen) == [names[1], names[3]]
    hidden = next(part for part in names[3].split(";") if "hidden" in part)
    assert _trainable_names(tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd(), trainable=hidden)) \
        == [names[3]]
    info = tflm_train.read_model_info(chosen)
    assert info.trainable_parameters == 3 * 3 * 4 + 4 + 8 * 4 * 4 * 6 + 8
    with pytest.raises(ConversionError, match="trainable name 'nope' is not the output or weights tensor"):
        tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd(), trainable=["nope"])
    with pytest.raises(ConversionError, match="trainable=6: the model has 5 weight ops"):
        tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd(), trainable=6)


def test_cli_converts_a_tflite(cnn, tmp_path):
    from tflm_train import cli

    _, plain = cnn
    (tmp_path / "plain.tflite").write_bytes(plain)
    out = tmp_path / "out.tflite"
    assert cli.main(["convert", str(tmp_path / "plain.tflite"), "-o", str(out), "--loss", LOSS,
                     "--trainable", "2", "--policy", "tinypropv2"]) == 0
    info = tflm_train.read_model_info(out.read_bytes())
    assert [op.kind for op in info.trainable_layers] == ["FULLY_CONNECTED"] * 2
    assert type(info.policy).__name__ == "TinyPropV2"
    names = _weight_op_names(out.read_bytes())
    assert cli.main(["convert", str(tmp_path / "plain.tflite"), "-o", str(out), "--loss", LOSS,
                     "--trainable", f"{names[0]},{names[4]}"]) == 0
    assert _trainable_names(out.read_bytes()) == [names[0], names[4]]
    assert cli.main(["convert", str(out), "--loss", LOSS]) == 1  # it has a plan now


# --- refusals, one sentence naming the op ------------------------------------------------

def _refused(model_bytes, match, **kwargs):
    with pytest.raises(ConversionError, match=match) as e:
        tflm_train.convert_tflite(model_bytes, loss=kwargs.pop("loss", LOSS), optimizer=_sgd(), **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_refuses_a_second_subgraph(cnn):
    _, plain = cnn
    graph = tflite_graph.read(plain)
    graph.subgraphs.append(copy.deepcopy(graph.subgraphs[0]))
    _refused(tflite_graph.write(graph), r"^this \.tflite has 2 subgraphs; the trainer trains single-subgraph")


def test_refuses_a_subgraph_op():
    """A real control-flow op (WHILE) and its subgraphs, from TensorFlow's converter."""
    @tf.function(input_signature=[tf.TensorSpec([1, 4])])
    def loop(x):
        return tf.nn.softmax(tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 0.5 + 1.0), (0, x))[1])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([loop.get_concrete_function()])
    _refused(bytes(converter.convert()), r"^WHILE '.+' runs another subgraph")


def test_refuses_dynamic_shapes():
    keras.utils.set_random_seed(11)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.Conv1D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation="softmax")])
    dynamic = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    _refused(dynamic, r"^\w+ '.+' has a dynamic shape \[-1, -1, 3\] \(tensor '.+'\); convert the model with a "
                      r"fixed input shape")


def test_refuses_an_operator_the_trainer_does_not_run():
    keras.utils.set_random_seed(12)
    model = _with_random_biases(keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                                                  keras.layers.LeakyReLU(0.1),
                                                  keras.layers.Dense(2, activation="softmax")]))
    _refused(tflite_fixed_batch(model), r"^this \.tflite has a LEAKY_RELU op \('.+'\), which the trainer does "
                                        r"not run \(it runs ADD, ")


def test_folds_the_run_time_shape_of_a_flatten():
    """from_keras_model computes a Flatten's shape at run time (SHAPE, STRIDED_SLICE,
    PACK) when the batch is dynamic: the converter folds it into a constant shape, so
    the file trains and TFLM still runs it as it ran the input."""
    keras.utils.set_random_seed(13)
    model = _with_random_biases(keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3),
                                                  keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]))
    source = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    ops = [tflite_graph._op_name(g, op) for g in [tflite_graph.read(source)] for op in g.subgraphs[0].operators]
    assert "SHAPE" in ops and "PACK" in ops
    trainable = tflm_train.convert_tflite(source, loss=LOSS, optimizer=_sgd())
    folded = tflite_graph.read(trainable)
    assert [tflite_graph._op_name(folded, op) for op in folded.subgraphs[0].operators] == \
        ["CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    x = _x(model, 4, seed=13)
    np.testing.assert_allclose(tflm_train.MicroTrainer(trainable).predict(x, verbose=0), H.tflm_predict(source, x),
                               rtol=1e-5, atol=1e-6)


def test_refuses_a_file_with_a_plan(cnn):
    _, plain = cnn
    trainable = tflm_train.convert_tflite(plain, loss=LOSS, optimizer=_sgd())
    _refused(trainable, r"^this \.tflite already carries a training plan \(metadata 'tflm_train'\)")
    _refused(tflm_train.MicroTrainer(trainable).model_bytes, "already carries a training plan")


def test_refuses_bytes_that_are_not_a_tflite(cnn, tmp_path):
    _, plain = cnn
    _refused(b"this is not a model at all", r"^these bytes are not a TFLite model")
    _refused(plain[:200], r"^this \.tflite cannot be read|^this \.tflite has no operators|^the trainer cannot")
    keras_file = tmp_path / "m.keras"
    cnn[0].save(keras_file)
    _refused(str(keras_file), r"^these bytes are not a TFLite model")
    with pytest.raises(ConversionError, match="model_bytes must be the bytes of a .tflite or its path"):
        tflm_train.convert_tflite(cnn[0], loss=LOSS, optimizer=_sgd())


def test_refuses_a_loss_the_graph_does_not_end_in(cnn):
    _, plain = cnn
    _refused(plain, "binary_crossentropy needs a model whose last layer ends in sigmoid", loss="binary_crossentropy")


def test_a_model_tflm_ships():
    """sine_float.tflite, the model of TFLM's hello_world example as the pip tflite-micro
    package ships it (nobody here made it): it gets a plan for its last layer, trains,
    and TFLM runs the trained bytes as the trainer predicts with them."""
    from pathlib import Path

    import tflite_micro

    path = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
    if not path.exists():
        pytest.skip(f"this tflite-micro release ships no {path.name}")
    source = path.read_bytes()
    trainable = tflm_train.convert_tflite(source, loss="mse", optimizer=tflm_train.SGD(0.01), trainable=1)
    x = np.linspace(0.0, 2 * np.pi, 64, dtype=np.float32).reshape(-1, 1)
    y = np.sin(x)
    trainer = tflm_train.MicroTrainer(trainable)
    np.testing.assert_allclose(trainer.predict(x, verbose=0), H.tflm_predict(source, x), rtol=1e-5, atol=1e-6)
    assert [op.trainable for op in tflm_train.read_model_info(trainable).ops] == [False, False, True]
    before = trainer.evaluate(x, y, verbose=0)
    trainer.fit(x, y, epochs=5, verbose=0)
    assert trainer.evaluate(x, y, verbose=0) < before
    np.testing.assert_allclose(trainer.predict(x, verbose=0), H.tflm_predict(trainer.model_bytes, x),
                               rtol=1e-5, atol=1e-6)


def test_a_split_backbone_may_hold_ops_the_trainer_does_not_run():
    """The trainer never runs a split backbone (TFLM does): a LEAKY_RELU there is fine
    with split=True, while the joined file, which the trainer runs whole, is refused."""
    keras.utils.set_random_seed(12)
    model = _with_random_biases(keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                                                  keras.layers.LeakyReLU(0.1),
                                                  keras.layers.Dense(2, activation="softmax")]))
    source = tflite_fixed_batch(model)
    _refused(source, r"LEAKY_RELU", trainable=1)
    backbone, head = tflm_train.convert_tflite(source, loss=LOSS, optimizer=_sgd(), trainable=1, split=True)
    x = _x(model, 6, seed=12)
    features = H.tflm_predict(backbone, x)
    np.testing.assert_allclose(tflm_train.MicroTrainer(head).predict(features, verbose=0), H.tflm_predict(source, x),
                               rtol=1e-5, atol=1e-6)
