"""Graphs the trainer must refuse because it would train something else than TFLM
runs (found by a review of the v2 core): an operator whose result nobody reads (the
loss would train it), a SOFTMAX that reshapes, a constant that TFLite broadcasts
otherwise than per channel, and a split-off bias whose layer output has a second
reader. Each is built by editing a small converted model with TensorFlow's object
model; the unedited control trains and predicts as TFLM does."""

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.converter import plan_writer, tflite_graph
from tflm_train.errors import InvalidModelError, InvalidPlanError, TrainerError, UnsupportedModelError
from tensorflow.lite.python import schema_py_generated as S

import helpers as H


@pytest.fixture(scope="module")
def base():
    """Input(5) -> Dense(4, relu) 'd1' -> Dense(3) 'd2' -> Softmax, converted."""
    keras.utils.set_random_seed(61)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu", name="d1"),
                              keras.layers.Dense(3, activation="softmax", name="d2")])
    return tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.1))


def _opcode(model, code):
    for i, c in enumerate(model.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
            return i
    oc = S.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _tensor(model, shape, values=None, name="t"):
    t = S.TensorT()
    t.shape, t.type, t.name = np.array(shape, np.int32), S.TensorType.FLOAT32, name.encode()
    b = S.BufferT()
    if values is not None:
        b.data = np.frombuffer(np.asarray(values, np.float32).tobytes(), np.uint8)
    model.buffers.append(b)
    t.buffer = len(model.buffers) - 1
    model.subgraphs[0].tensors.append(t)
    return len(model.subgraphs[0].tensors) - 1


def _op(model, code, inputs, outputs, options_type=0, options=None):
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = _opcode(model, code), np.array(inputs, np.int32), np.array(outputs, np.int32)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _edited(base_bytes, edit, layers=None):
    """The model after edit(model, operators); the plan rebuilt for `layers` (default: as converted)."""
    model = tflite_graph.read(base_bytes)
    model.metadata = [m for m in model.metadata if m.name != b"tflm_train_state"]
    edit(model, model.subgraphs[0].operators)
    layers = layers or [{"op_index": 0, "name": "d1"}, {"op_index": 1, "name": "d2"}]
    plan = plan_writer.build_plan(layers, "sparse_categorical_crossentropy", tflm_train.SGD(0.1), tflm_train.Full(), 1)
    tflite_graph.add_metadata(model, "tflm_train", plan)
    return tflite_graph.write(model)


def test_control_edit_trains_like_tflm(base):
    edited = _edited(base, lambda model, ops: None)
    trainer = tflm_train.MicroTrainer(edited)
    x = np.random.default_rng(62).normal(size=(2, 5)).astype(np.float32)
    trainer.train_step(x[:1], np.array([1]))
    np.testing.assert_allclose(trainer.predict(x), H.tflm_predict(trainer.model_bytes, x), rtol=1e-5, atol=1e-6)


def test_an_operator_nobody_reads_is_refused(base):
    def edit(model, ops):
        out = _tensor(model, [1, 2], name="dead_out")
        weights = _tensor(model, [2, 5], np.ones((2, 5)), "dead_w")
        ops.insert(2, _op(model, S.BuiltinOperator.FULLY_CONNECTED, [0, weights, -1], [out],
                          S.BuiltinOptions.FullyConnectedOptions, S.FullyConnectedOptionsT()))
    layers = [{"op_index": 0, "name": "d1"}, {"op_index": 1, "name": "d2"}, {"op_index": 2, "name": "dead"}]
    with pytest.raises(InvalidModelError, match="which no operator reads"):
        tflm_train.MicroTrainer(_edited(base, edit, layers))


def test_a_softmax_that_reshapes_is_refused(base):
    def edit(model, ops):
        softmax = ops[-1]
        model.subgraphs[0].tensors[int(softmax.outputs[0])].shape = np.array([3, 1], np.int32)
    with pytest.raises(TrainerError, match="SOFTMAX"):
        tflm_train.MicroTrainer(_edited(base, edit))


@pytest.mark.parametrize("shape, code", [((3, 1), "ADD"), ((3, 1), "MUL"), ((1, 3, 1), "SUB")])
def test_a_constant_tflite_broadcasts_otherwise_is_refused(base, shape, code):
    """A [3, 1] constant on a [1, 3] activation: TFLite broadcasts its first value (with
    a [1, 3] output), not one value per channel."""
    def edit(model, ops):
        logits = int(ops[1].outputs[0])
        constant = _tensor(model, shape, np.array([0.5, -1.0, 2.0]).reshape(shape), "c")
        shifted = _tensor(model, [1, 3], name="shifted")
        options_type = getattr(S.BuiltinOptions, f"{code.capitalize()}Options")
        options = getattr(S, f"{code.capitalize()}OptionsT")()
        ops.insert(2, _op(model, getattr(S.BuiltinOperator, code), [logits, constant], [shifted], options_type,
                          options))
        ops[3].inputs = np.array([shifted], np.int32)
    with pytest.raises(UnsupportedModelError, match="does not broadcast"):
        tflm_train.MicroTrainer(_edited(base, edit))


def test_a_split_bias_whose_layer_output_has_another_reader_is_refused(base):
    """d1's output goes to a bias ADD and to a second ADD: the bias gradient would not be
    the layer's error."""
    def edit(model, ops):
        hidden = int(ops[0].outputs[0])
        bias = _tensor(model, [4], np.full(4, 0.1), "bias")
        biased, summed = _tensor(model, [1, 4], name="biased"), _tensor(model, [1, 4], name="summed")
        add = S.BuiltinOptions.AddOptions
        ops.insert(1, _op(model, S.BuiltinOperator.ADD, [hidden, bias], [biased], add, S.AddOptionsT()))
        ops.insert(2, _op(model, S.BuiltinOperator.ADD, [hidden, biased], [summed], add, S.AddOptionsT()))
        ops[0].builtinOptions.fusedActivationFunction = 0
        ops[3].inputs = np.array([summed] + [int(i) for i in ops[3].inputs[1:]], np.int32)
    layers = [{"op_index": 0, "name": "d1", "bias_op_index": 1, "has_bias": False}, {"op_index": 3, "name": "d2"}]
    with pytest.raises(InvalidPlanError, match="only reader"):
        tflm_train.MicroTrainer(_edited(base, edit, layers))
