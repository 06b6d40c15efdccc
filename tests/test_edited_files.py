"""Robustness of the trainer against files nobody should trust, on a small converted
CNN (PAD, CONV_2D, DEPTHWISE_CONV_2D, ADD, MAX/AVERAGE_POOL_2D, MEAN,
FULLY_CONNECTED, SOFTMAX): single-byte corruptions -- every byte of the training plan
set to each single-bit flip, 0x00, 0xFF and its complement; every other byte
complemented and one bit flipped -- and hand-edited graphs (stride 0, negative
padding, ADD of different sizes, ...) and plans (a pool as a layer, ...) must be
refused, and graph options must be honoured exactly as TFLM runs them (dilation,
opcode swaps, ...). The graph is edited with TensorFlow's object model and plans are
rebuilt with the converter's writer. Cases run in a child process: a crash or a hang
(20 s per case) fails the test instead of killing the run, and the child is restarted
after the case it died on.
"""

import copy
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import flatbuffers
import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.converter import plan_schema, plan_writer, tflite_graph
from tflm_train.errors import TrainerError

import cnn_models as C
import helpers as H

L = keras.layers
INFER_TOL = 1e-5
SCCE = "sparse_categorical_crossentropy"


def _small_cnn():
    """Pad (asymmetric, so TensorFlow keeps it), Conv2D, DepthwiseConv2D, Add, MaxPool2D,
    AveragePool2D, Mean, FullyConnected, Softmax."""
    keras.utils.set_random_seed(41)
    inp = keras.Input((7, 7, 2))
    h = L.ZeroPadding2D(((1, 2), (0, 1)), name="zp")(inp)
    a = L.Conv2D(4, 3, activation="relu", name="conv")(h)
    b = L.DepthwiseConv2D(3, padding="same", name="dw")(a)
    h = L.Add(name="add")([a, b])
    h = L.MaxPooling2D(2, name="maxpool")(h)
    h = L.AveragePooling2D(2, strides=1, padding="same", name="avgpool")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    model = keras.Model(inp, L.Dense(3, activation="softmax", name="out")(h))
    C.randomize(model, 42)
    return model


@pytest.fixture(scope="module")
def small_cnn():
    """(file, (args, kwargs) convert() gave plan_writer.build_plan for its plan)."""
    calls = []
    recording = lambda *a, **k: calls.append(copy.deepcopy((a, k))) or plan_writer.build_plan(*a, **k)  # noqa: E731
    # The package's `convert` attribute is the function: fetch the module itself.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importlib.import_module("tflm_train.converter.convert"), "build_plan", recording)
        b = tflm_train.convert(_small_cnn(), loss=SCCE, optimizer=tflm_train.SGD(0.1, momentum=0.9), batch_size=4)
    ops = tflm_train.read_model_info(b).ops
    assert [op.kind for op in ops] == ["PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "AVERAGE_POOL_2D",
                                       "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert [(d["op_index"], d["name"]) for d in calls[-1][0][0]] == [(i, op.name) for i, op in enumerate(ops)
                                                                      if op.trainable]
    return b, calls[-1]


# The child: runs every case (a list of [offset, byte value] writes into the base file, or
# the path of a whole file) through MicroTrainer; prints a line when a case starts and one
# when it ends. SIGALRM's default action ends the process, so a case that hangs inside C++
# is reported as one (a Python handler would never run there).
_CHILD = textwrap.dedent("""
    import json, signal, sys
    import numpy as np
    import tflm_train
    from tflm_train.errors import TrainerError

    base = open(sys.argv[1], "rb").read()
    cases = json.load(open(sys.argv[2]))
    first = int(sys.argv[3])
    shape = tuple(tflm_train.read_model_info(base).input_shape[1:])
    x = np.random.default_rng(0).normal(size=(4,) + shape).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    for case_id, what in cases[first:]:
        print(json.dumps(["start", case_id]), flush=True)
        if isinstance(what, str):
            b = open(what, "rb").read()
        else:
            b = bytearray(base)
            for offset, value in what:
                b[offset] = value
            b = bytes(b)
        signal.alarm(20)
        try:
            t = tflm_train.MicroTrainer(b)
            t.predict(x)
            t.train_step(x[:1], y[:1])
            t.train_step(x, y)
            t.evaluate(x, y)
            tflm_train.read_model_info(t.model_bytes)
            outcome = "ok"
        except TrainerError as e:
            outcome = "raised:" + type(e).__name__
        except ValueError as e:
            outcome = "value_error:" + str(e)[:160]
        except Exception as e:  # anything else is a bug
            outcome = "other:" + type(e).__name__ + ":" + str(e)[:160]
        signal.alarm(0)
        print(json.dumps(["done", case_id, outcome]), flush=True)
    print(json.dumps(["finished"]), flush=True)
""")


def run_cases(tmp_path, base, cases, max_deaths=25):
    """{case id: outcome} for every case, run in a child process that is restarted after
    the case it died on ("died:signal N"; "hang" for SIGALRM, i.e. a case over 20 s)."""
    (tmp_path / "base.tflite").write_bytes(base)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "child.py").write_text(_CHILD)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    index = {case_id: i for i, (case_id, _) in enumerate(cases)}
    outcomes, first, deaths = {}, 0, 0
    while first < len(cases):
        proc = subprocess.run([sys.executable, "child.py", "base.tflite", "cases.json", str(first)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=900)
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]
        for line in lines:
            if line[0] == "done":
                outcomes[line[1]] = line[2]
        if proc.returncode == 0 and lines and lines[-1] == ["finished"]:
            break
        started = [line[1] for line in lines if line[0] == "start"]
        assert started, f"the child died before its first case: {proc.returncode}, {proc.stderr[-1500:]}"
        dead = started[-1]
        outcomes[dead] = "hang" if proc.returncode == -signal.SIGALRM else f"died:{proc.returncode}"
        deaths += 1
        if deaths >= max_deaths:
            break
        first = index[dead] + 1
    return outcomes


def _plan_range(model_bytes):
    """Where the training plan (the buffer of metadata "tflm_train") lies in the file."""
    model = tflite_graph.read(model_bytes)
    entry = next(m for m in model.metadata if m.name == plan_writer.PLAN_METADATA_NAME.encode())
    raw = bytes(model.buffers[entry.buffer].data)
    start = model_bytes.find(raw)
    assert start > 0 and model_bytes.find(raw, start + 1) < 0
    return start, start + len(raw)


def test_single_byte_corruptions_never_crash(small_cnn, tmp_path):
    """Every byte of the training plan set to each single-bit flip, 0x00, 0xFF and its
    complement; every other byte of the file complemented and one bit flipped. Each
    variant must raise a tflm_train error (or ValueError) or construct, predict, train
    (batch 1 and 4) and evaluate."""
    base = small_cnn[0]
    start, end = _plan_range(base)
    cases = []
    for offset, value in enumerate(base):
        if start <= offset < end:
            values = {value ^ (1 << bit) for bit in range(8)} | {0x00, 0xFF, value ^ 0xFF}
        else:
            values = {value ^ 0xFF, value ^ (1 << (offset % 8))}
        cases.extend([f"{offset}={v:#04x}", [[offset, v]]] for v in sorted(values - {value}))
    outcomes = run_cases(tmp_path, base, cases)
    assert len(outcomes) == len(cases) or any(v.startswith(("died", "hang")) for v in outcomes.values())
    bad = {k: v for k, v in outcomes.items() if v.startswith(("died", "hang", "other"))}
    region = lambda k: "plan" if start <= int(k.split("=")[0]) < end else "file"  # noqa: E731
    assert not bad, (f"{len(bad)} of {len(outcomes)} corruptions crashed, hung or raised a foreign exception "
                     f"(plan bytes {start}..{end}): {[(k, region(k), v) for k, v in list(bad.items())[:15]]}")
    raised = sum(v.startswith(("raised", "value_error")) for v in outcomes.values())
    assert raised > len(cases) // 10 and sum(v == "ok" for v in outcomes.values()) > len(cases) // 10


# Hand-edited files. The forward graph is the TFLite subgraph itself (the plan only names
# the trainable layers), so most edits change the graph: edit(model) on TensorFlow's object
# model of the file, the plan kept as converted. Plan edits rebuild the plan with the
# converter's writer from the arguments convert() gave it, the layer dicts edited.

def with_edited_graph(model_bytes, edit):
    model = tflite_graph.read(model_bytes)
    edit(model)
    return tflite_graph.write(model)


def with_edited_plan(small_cnn, edit):
    model_bytes, (args, kwargs) = small_cnn
    layers = copy.deepcopy(args[0])
    edit(layers)
    plan = plan_writer.build_plan(layers, *args[1:], **kwargs)
    return with_edited_graph(model_bytes, lambda model: tflite_graph.add_metadata(model, "tflm_train", plan))


PAD, CONV, DW, ADD, MAXPOOL, AVGPOOL, MEAN, FC = range(8)   # operator indices in _small_cnn's graph
_ops = lambda model: model.subgraphs[0].operators  # noqa: E731


def _options(position, **fields):   # a misspelt field is not written: edited_outcomes sees an unchanged file
    return lambda model: [setattr(_ops(model)[position].builtinOptions, k, v) for k, v in fields.items()]


def _set_input(position, slot, tensor_of):
    return lambda model: np.put(_ops(model)[position].inputs, slot, tensor_of(_ops(model)))


def _opcode_of(position, other):
    return lambda model: setattr(_ops(model)[position], "opcodeIndex", _ops(model)[other].opcodeIndex)


def _paddings(rows):   # PAD's constant paddings: int32 [rank, 2], before/after per axis
    def edit(model):
        tensor = model.subgraphs[0].tensors[_ops(model)[PAD].inputs[1]]
        tensor.shape = np.array(np.shape(rows), np.int32)
        model.buffers[tensor.buffer].data = np.frombuffer(np.array(rows, np.int32).tobytes(), np.uint8)
    return edit


I32_MAX = 2 ** 31 - 1
# Graphs no trainer can run: each must be refused with a tflm_train error. Version 1's
# plan edits that TFLite cannot express are gone: pooling with dilation (Pool2DOptions
# has none), MEAN with a fused activation (ReducerOptions has none), a pool marked
# trainable (a plan edit below); depth multiplier 0 moved to HONOURED_EDITS (TFLite infers it).
REFUSED_GRAPH_EDITS = {
    "conv_stride_0": _options(CONV, strideH=0),
    "conv_stride_negative": _options(CONV, strideW=-1),
    "conv_stride_65536": _options(CONV, strideH=65536),
    "conv_dilation_0": _options(CONV, dilationWFactor=0),
    "conv_dilation_2pow20": _options(CONV, dilationHFactor=1 << 20),
    "conv_dilation_int32_max": _options(CONV, dilationWFactor=I32_MAX),
    "conv_dilation_65536_valid": _options(CONV, dilationHFactor=65536),
    "conv_padding_enum_2": _options(CONV, padding=2),
    "conv_fused_relu_n1_to_1": _options(CONV, fusedActivationFunction=2),
    "conv_fused_activation_9": _options(CONV, fusedActivationFunction=9),
    "conv_opcode_of_depthwise": _opcode_of(CONV, DW),    # its Conv2DOptions then mismatch
    "conv_reads_its_weights": _set_input(CONV, 0, lambda ops: ops[CONV].inputs[1]),
    "conv_weights_are_its_bias": _set_input(CONV, 1, lambda ops: ops[CONV].inputs[2]),
    # the original paddings: [[0, 0], [1, 2], [0, 1], [0, 0]]
    "pad_before_negative_after_compensating": _paddings([[0, 0], [-1, 4], [0, 1], [0, 0]]),
    "pad_before_negative": _paddings([[0, 0], [-5, 2], [0, 1], [0, 0]]),
    "pad_paddings_too_short": _paddings([[0, 0], [1, 2], [0, 1]]),
    "pad_after_int32_max": _paddings([[0, 0], [1, I32_MAX], [0, 1], [0, 0]]),
    "pad_sum_overflows": _paddings([[0, 0], [I32_MAX, 3 - I32_MAX], [0, 1], [0, 0]]),
    "add_second_input_other_size": _set_input(ADD, 1, lambda ops: ops[PAD].outputs[0]),
    "add_second_input_model_input": _set_input(ADD, 1, lambda ops: ops[PAD].inputs[0]),
    "add_one_input": lambda model: setattr(_ops(model)[ADD], "inputs", _ops(model)[ADD].inputs[:1]),
    "depthwise_multiplier_2": _options(DW, depthMultiplier=2),
    "depthwise_multiplier_negative": _options(DW, depthMultiplier=-1),
    "depthwise_multiplier_int32_max": _options(DW, depthMultiplier=I32_MAX),
    # 4 input channels x (2^30 + 1) = 2^32 + 4, which wraps to 4 in int32
    "depthwise_multiplier_wraps_int32": _options(DW, depthMultiplier=2 ** 30 + 1),
    "depthwise_opcode_of_conv": _opcode_of(DW, CONV),    # its DepthwiseConv2DOptions then mismatch
    "avgpool_filter_0": _options(AVGPOOL, filterHeight=0),
    "maxpool_stride_0": _options(MAXPOOL, strideW=0),
    "maxpool_filter_65536_valid": _options(MAXPOOL, filterHeight=65536),
    "maxpool_builtin_code_99": lambda model: [setattr(model.operatorCodes[_ops(model)[MAXPOOL].opcodeIndex], field, 99)
                                              for field in ("builtinCode", "deprecatedBuiltinCode")],
    "fc_weights_of_the_conv": _set_input(FC, 1, lambda ops: ops[CONV].inputs[1]),
}

# Plans no trainer can run (the converted layers are conv, dw and out, ops 1, 2 and 7).
REFUSED_PLAN_EDITS = {
    "layer_on_the_maxpool": lambda layers: layers.insert(2, {"op_index": MAXPOOL, "name": "maxpool"}),
    "layer_op_index_past_the_graph": lambda layers: layers[2].update(op_index=9),
    "layer_op_index_int32_max": lambda layers: layers[2].update(op_index=I32_MAX),
    "two_layers_on_one_op": lambda layers: layers.insert(2, dict(layers[1], name="dw_again")),
    "layers_out_of_forward_order": lambda layers: layers.insert(0, layers.pop(1)),
    "bias_op_is_the_maxpool": lambda layers: layers[0].update(bias_op_index=MAXPOOL),
    "bias_op_is_the_residual_add": lambda layers: layers[1].update(bias_op_index=ADD),
    "bias_op_past_the_graph": lambda layers: layers[0].update(bias_op_index=9),
}

# Runnable graphs whose options differ from what Keras made: the TFLite options are the
# only truth, so the trainer must compute exactly what TFLM computes on the same file
# (refusing one is fine).
HONOURED_EDITS = {
    "depthwise_dilation_2_same": _options(DW, dilationHFactor=2),
    "depthwise_dilation_65536_same": _options(DW, dilationHFactor=65536, dilationWFactor=65536),
    "avgpool_filter_65536_same": _options(AVGPOOL, filterHeight=65536, filterWidth=65536),
    "maxpool_opcode_of_avgpool": _opcode_of(MAXPOOL, AVGPOOL),   # both take Pool2DOptions
    "conv_fused_relu_dropped": _options(CONV, fusedActivationFunction=0),
    "add_same_tensor_twice": _set_input(ADD, 1, lambda ops: ops[ADD].inputs[0]),
    "depthwise_multiplier_0": _options(DW, depthMultiplier=0),   # TFLite infers it from the shapes
}


def test_identity_edits_give_the_original_file(small_cnn):
    """The control: an unedited rewrite of graph or plan is the file itself (trains and predicts alike)."""
    assert with_edited_graph(small_cnn[0], lambda model: None) == small_cnn[0]
    assert with_edited_plan(small_cnn, lambda layers: None) == small_cnn[0]


@pytest.fixture(scope="module")
def edited_outcomes(small_cnn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edited")
    cases, files = [], {}
    for name, edit in {**REFUSED_GRAPH_EDITS, **HONOURED_EDITS}.items():
        files[name] = with_edited_graph(small_cnn[0], edit)
    for name, edit in REFUSED_PLAN_EDITS.items():
        files[name] = with_edited_plan(small_cnn, edit)
    for name in files:
        assert files[name] != small_cnn[0], name
        (tmp / f"{name}.tflite").write_bytes(files[name])
        cases.append([name, str(tmp / f"{name}.tflite")])
    return run_cases(tmp, small_cnn[0], cases), files


@pytest.mark.parametrize("name", [*REFUSED_GRAPH_EDITS, *REFUSED_PLAN_EDITS])
def test_hand_edited_file_is_refused(edited_outcomes, name):
    outcomes, files = edited_outcomes
    if outcomes[name] == "ok":  # it did not crash in the child: safe to see what it computes
        x = np.random.default_rng(43).normal(size=(3, 7, 7, 2)).astype(np.float32)
        gap = np.abs(tflm_train.MicroTrainer(files[name]).predict(x) - H.tflm_predict(files[name], x)).max()
        pytest.fail(f"{name}: accepted (want a tflm_train error); its predictions differ from TFLM's on the same "
                    f"file by up to {gap:.3g}")
    assert outcomes[name].startswith("raised:"), f"{name}: {outcomes[name]} (want a tflm_train error)"


@pytest.mark.parametrize("name", list(HONOURED_EDITS))
def test_tflite_options_are_honoured_exactly(edited_outcomes, name):
    """Refused with a tflm_train error, or the trainer predicts what TFLM predicts on the
    same file, before and after a training step."""
    outcomes, files = edited_outcomes
    if outcomes[name].startswith("raised:"):
        return
    assert outcomes[name] == "ok", f"{name}: {outcomes[name]}"
    x = np.random.default_rng(43).normal(size=(3, 7, 7, 2)).astype(np.float32)
    trainer = tflm_train.MicroTrainer(files[name])
    np.testing.assert_allclose(trainer.predict(x), H.tflm_predict(files[name], x), rtol=INFER_TOL, atol=INFER_TOL,
                               err_msg=f"{name}: the trainer accepted the file and computes another function than TFLM")
    trainer.train_step(x, np.array([0, 1, 2]))
    np.testing.assert_allclose(trainer.predict(x), H.tflm_predict(trainer.model_bytes, x), rtol=INFER_TOL,
                               atol=INFER_TOL, err_msg=f"{name}: after a step, the trainer and TFLM differ")


@pytest.mark.parametrize("field", ["optimizer", "policy", "memory"])
def test_plan_without_an_optional_table(small_cnn, field):
    """A plan whose `optimizer`, `policy` or `memory` table is absent (a FlatBuffers table
    field is optional; one corrupted vtable byte does this): MicroTrainer raises a
    tflm_train error or works (the C++ reads an absent policy as Full())."""
    def without(builder, name, values, table=plan_writer._table):   # the writer, leaving `field` out of the root
        return table(builder, name, {k: v for k, v in values.items() if name != plan_schema.ROOT or k != field})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan_writer, "_table", without)
        edited = with_edited_plan(small_cnn, lambda layers: None)
    slot = 4 + 2 * [name for name, _, _ in plan_schema.TABLES[plan_schema.ROOT]].index(field)  # its vtable entry
    plan = lambda b: b[slice(*_plan_range(b))]  # noqa: E731
    root = lambda p: flatbuffers.table.Table(p, flatbuffers.encode.Get(flatbuffers.packer.uoffset, p, 0))  # noqa
    assert root(plan(small_cnn[0])).Offset(slot) != 0 and root(plan(edited)).Offset(slot) == 0, field
    try:
        trainer = tflm_train.MicroTrainer(edited)
    except TrainerError:
        return
    x = np.random.default_rng(44).normal(size=(2, 7, 7, 2)).astype(np.float32)
    trainer.train_step(x[:1], np.array([1]))
    np.testing.assert_allclose(trainer.predict(x), H.tflm_predict(trainer.model_bytes, x), rtol=INFER_TOL,
                               atol=INFER_TOL)
    if field == "policy":
        assert isinstance(trainer.policy, tflm_train.Full)
