"""A .tflite given without its Keras model (convert_tflite): check that the file is one
the trainer can take, find its weight ops from the graph alone and resolve `trainable`
against their names. (int8 files are cut and rewritten by int8_model first.)"""

import numpy as np

from ..errors import ConversionError
from . import tflite_graph as G
from .plan_writer import PLAN_METADATA_NAME

_INT8 = 9
# Ops that run another subgraph.
_SUBGRAPH_OPS = ("WHILE", "IF", "CALL_ONCE", "CALL")


def _tensor_name(model, index):
    return model.subgraphs[0].tensors[index].name.decode(errors="replace")


def _is_constant(model, index):
    data = model.buffers[model.subgraphs[0].tensors[index].buffer].data
    return data is not None and len(data) > 0


def describe_op(model, index):
    """`KIND 'output tensor'` of operator `index` of subgraph 0."""
    op = model.subgraphs[0].operators[index]
    return f"{G._op_name(model, op)} '{_tensor_name(model, int(op.outputs[0]))}'"


def read(model_bytes):
    """The parsed model, or ConversionError for bytes that are not a TFLite model."""
    data = bytes(model_bytes)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConversionError("these bytes are not a TFLite model (no 'TFL3' file identifier)")
    try:
        model = G.read(data)
    except Exception as e:  # flatbuffers raises several types on a corrupt file
        raise ConversionError(f"this .tflite cannot be read (truncated or corrupt: {e})") from None
    if not model.subgraphs or model.subgraphs[0].operators is None or model.subgraphs[0].tensors is None:
        raise ConversionError("this .tflite has no operators in its first subgraph")
    return model


def check(model):
    """Refuses, naming the op, what makes a file untrainable: a training plan it already
    has, a second subgraph, dynamic shapes, more than one input or output. (Tensor types
    are int8_model.check's; operators the trainer does not run are checked by the caller.)"""
    if any(m.name == PLAN_METADATA_NAME.encode() for m in (model.metadata or [])):
        raise ConversionError(f"this .tflite already carries a training plan (metadata '{PLAN_METADATA_NAME}'): "
                              "train it as it is with MicroTrainer (which can override its policy and batch "
                              "size), or give convert_tflite the file without a plan")
    sg = model.subgraphs[0]
    for index, op in enumerate(sg.operators):
        if G._op_name(model, op) in _SUBGRAPH_OPS:
            raise ConversionError(f"{describe_op(model, index)} runs another subgraph; the trainer trains "
                                  "single-subgraph models")
    if len(model.subgraphs) > 1:
        raise ConversionError(f"this .tflite has {len(model.subgraphs)} subgraphs; the trainer trains "
                              "single-subgraph models")
    for index, op in enumerate(sg.operators):
        for t in [int(t) for t in op.inputs if t >= 0] + [int(t) for t in op.outputs]:
            signature = sg.tensors[t].shapeSignature
            if signature is not None and any(int(d) < 0 for d in list(signature)[1:]):
                raise ConversionError(f"{describe_op(model, index)} has a dynamic shape "
                                      f"{[int(d) for d in signature]} (tensor '{_tensor_name(model, t)}'); "
                                      "convert the model with a fixed input shape")
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise ConversionError(f"this .tflite has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs; "
                              "tflm_train trains models with exactly one of each")


def find_weight_ops(model):
    """The file's weight ops (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D with constant
    weights, float32 or int8), named by their output tensors; their values untouched."""
    sg = model.subgraphs[0]
    ops = []
    for index, op in enumerate(sg.operators):
        if G._op_name(model, op) not in G._UNIT_KINDS or len(op.inputs) < 2:
            continue
        if not _is_constant(model, int(op.inputs[1])):
            raise ConversionError(f"{describe_op(model, index)} takes its weights from another op; only "
                                  "constant weights can train")
        ops.append(G.WeightOp(index, None, label=_tensor_name(model, int(op.outputs[0]))))
    if not ops:
        raise ConversionError("this .tflite has no FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D op with "
                              "constant weights: nothing can train")
    return ops


def weight_ops(model):
    """The file's float32 weight ops (int8 ones are a frozen backbone), each with weight
    and bias tensors that only it uses, holding the file's values. Where the op has no
    bias (or a zero one) and a per-channel ADD of a constant follows it (TensorFlow keeps
    a one-filter layer's bias out of the op that way), that constant is the bias that trains."""
    sg = model.subgraphs[0]
    ops = [op for op in find_weight_ops(model) if int(sg.tensors[int(sg.operators[op.index].inputs[1])].type) != _INT8]
    for weight_op in ops:
        op = sg.operators[weight_op.index]
        _own_weights(model, weight_op.index, G._op_name(model, op), weight_op, G._constant(model, int(op.inputs[1])))
    return ops


def _own_weights(model, index, kind, weight_op, kernel):
    sg = model.subgraphs[0]
    op = sg.operators[index]
    inputs = [int(i) for i in op.inputs] + [-1] * (3 - len(op.inputs))
    inputs[1] = G._private_tensor(model, inputs[1], _tensor_name(model, inputs[1]), kernel)
    channels = G._shape(model, int(op.outputs[0]))[-1]
    bias = G._constant(model, inputs[2])
    if inputs[2] >= 0 and bias is None:
        raise ConversionError(f"{describe_op(model, index)} takes its bias from another op; only constant "
                              "biases can train")
    split = G._split_bias(model, op, channels) if bias is None or not np.any(bias) else None
    if split is not None:
        # The ADD's constant is the bias that trains; the op's own (zero) bias, if any,
        # stays frozen. A batch norm's MUL and ADD after it stay as they are (frozen).
        bias_index, k, _ = split
        add = sg.operators[bias_index]
        add.inputs[k] = G._private_tensor(model, int(add.inputs[k]), _tensor_name(model, int(add.inputs[k])),
                                          G._constant(model, int(add.inputs[k])))
        weight_op.bias_op = bias_index
        bias = None
    if bias is not None:
        inputs[2] = G._private_tensor(model, inputs[2], _tensor_name(model, inputs[2]), bias)
    elif kind == "FULLY_CONNECTED" and inputs[2] < 0:
        weight_op.has_bias = False   # the file has none: nothing to train there
    else:
        # TFLite needs a bias tensor on a convolution: a zero of the op's own, frozen.
        name = f"{_tensor_name(model, inputs[1])}/zero_bias"
        inputs[2] = G._private_tensor(model, inputs[2], name, np.zeros(channels, np.float32))
        weight_op.has_bias = False
    op.inputs = np.array(inputs, np.int32)


def mark_trainable(model, ops, trainable):
    """Sets WeightOp.trainable: None for every weight op, an int N for the last N, or
    names (one string or a list). A name is a weight op's output tensor name, the name
    of its weights tensor, or one `;`-separated part of its output tensor's name (TensorFlow
    joins the names of the ops it fused with `;`), when that part names one op only."""
    if trainable is None:
        chosen = set(range(len(ops)))
    elif isinstance(trainable, (int, np.integer)) and not isinstance(trainable, bool):
        if not 1 <= trainable <= len(ops):
            raise ConversionError(f"trainable={trainable}: the model has {len(ops)} weight ops")
        chosen = set(range(len(ops) - int(trainable), len(ops)))
    else:
        names = [trainable] if isinstance(trainable, str) else list(trainable)
        chosen = {_resolve(model, ops, name) for name in names}
        if not chosen:
            raise ConversionError("no op would train: choose at least one weight op")
    for i, op in enumerate(ops):
        op.trainable = i in chosen


def _aliases(model, op):
    sg = model.subgraphs[0]
    output = op.label
    weights = _tensor_name(model, int(sg.operators[op.index].inputs[1]))
    return output, weights, [part for part in output.split(";") if part]


def _resolve(model, ops, name):
    if not isinstance(name, str):
        raise ConversionError(f"trainable names must be strings (tensor names), got {name!r}")
    for level in range(3):
        hits = []
        for i, op in enumerate(ops):
            output, weights, parts = _aliases(model, op)
            if (level == 0 and name == output) or (level == 1 and name == weights) or (level == 2 and name in parts):
                hits.append(i)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ConversionError(f"trainable name '{name}' fits {len(hits)} weight ops "
                                  f"({', '.join(repr(ops[i].label) for i in hits)}); give an output tensor name")
    raise ConversionError(f"trainable name '{name}' is not the output or weights tensor of a weight op; "
                          f"weight ops (by output tensor): {[op.label for op in ops]}")
