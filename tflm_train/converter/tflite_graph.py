"""TFLite side of conversion: read the graph TensorFlow's converter produced,
match every weight op to its Keras weight unit, and give every weight and bias
tensor a buffer of its own holding our exact values. The graph itself is the
forward pass the trainer runs: the C++ reads (and validates) its operators."""

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConversionError
from . import keras_model

# Weight ops and the WeightUnit kinds each can hold.
_UNIT_KINDS = {"FULLY_CONNECTED": ("dense",),
               "CONV_2D": ("conv1d", "conv2d", "separable_pointwise"),
               "DEPTHWISE_CONV_2D": ("depthwise", "separable_depthwise")}
_ALIASES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")  # ops that only reshape
_DTYPES = {0: np.float32, 2: np.int32, 4: np.int64}  # TFLite TensorType -> numpy, for constants we read
# Kernel matching: TensorFlow folds batch norm into the kernel in float32 with its own
# operation order, so its values differ from ours by a few ulps (observed <= 1e-7
# relative to max|w|); distinct layers differ by O(max|w|).
_MATCH_RTOL = 1e-4
_MATCH_ATOL = 1e-6


@dataclass
class WeightOp:
    """A weight operator of the graph and the Keras unit it holds (None for a .tflite
    given without its Keras model: `label`, the op's output tensor, names it then)."""
    index: int                  # operator index in subgraph 0
    unit: object = field(repr=False)
    bias_op: int = -1           # an ADD that holds the unit's bias, when TensorFlow split it off
    has_bias: bool = True       # False: the op's bias input is a frozen zero (the unit has none)
    trainable: bool = False
    label: str = ""

    @property
    def name(self):
        return self.unit.name if self.unit is not None else self.label

    def plan_layer(self):
        return {"op_index": self.index, "name": self.name, "bias_op_index": self.bias_op,
                "has_bias": self.has_bias}


def _schema():
    from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def read(tflite_bytes):
    from tensorflow.lite.tools import flatbuffer_utils
    return flatbuffer_utils.read_model_from_bytearray(bytearray(tflite_bytes))


def write(model):
    from tensorflow.lite.tools import flatbuffer_utils
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _op_name(model, op):
    schema = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(number, f"op#{number}")


def _shape(model, index):
    shape = model.subgraphs[0].tensors[index].shape
    return () if shape is None else tuple(int(d) for d in shape)


def _constant(model, index):
    """The values of a constant tensor, shaped, or None for an activation tensor."""
    if index < 0:
        return None
    tensor = model.subgraphs[0].tensors[index]
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    dtype = _DTYPES.get(int(tensor.type))
    if dtype is None:
        raise ConversionError(f"tensor '{tensor.name.decode()}' has TFLite type {tensor.type}; only float32 "
                              "weights and int32/int64 shape constants are supported")
    return np.frombuffer(bytes(bytearray(data)), dtype).reshape(_shape(model, index))


def _new_buffer(model, raw):
    schema = _schema()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(raw), np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _add_tensor(model, name, values):
    """A new float32 constant tensor with a buffer of its own; returns its index."""
    schema = _schema()
    values = np.ascontiguousarray(values, np.float32)
    tensor = schema.TensorT()
    tensor.shape = np.array(values.shape, np.int32)
    tensor.type = schema.TensorType.FLOAT32
    tensor.name = name.encode()
    tensor.buffer = _new_buffer(model, values.tobytes())
    model.subgraphs[0].tensors.append(tensor)
    return len(model.subgraphs[0].tensors) - 1


def _set_data(model, tensor_index, values):
    buffer = model.buffers[model.subgraphs[0].tensors[tensor_index].buffer]
    buffer.data = np.frombuffer(np.ascontiguousarray(values, np.float32).tobytes(), np.uint8)


def _private_tensor(model, tensor_index, name, values):
    """A tensor holding `values` that only this op reads and that owns its buffer.

    A tensor other ops also read is replaced by a new one; a tensor that merely
    shares its buffer gets a buffer of its own; otherwise the data is overwritten
    in place. Returns the tensor index to use."""
    if tensor_index < 0 or sum(1 for s in model.subgraphs for op in s.operators
                               for i in op.inputs if i == tensor_index) > 1:
        return _add_tensor(model, name, values)
    tensor = model.subgraphs[0].tensors[tensor_index]
    if sum(1 for s in model.subgraphs for t in s.tensors if t.buffer == tensor.buffer) > 1:
        tensor.buffer = _new_buffer(model, np.ascontiguousarray(values, np.float32).tobytes())
    else:
        _set_data(model, tensor_index, values)
    return tensor_index


def weight_ops(model, units):
    """The graph's weight ops, each matched to the unit (keras_model.weight_units())
    whose kernel it holds, with its weight and bias tensors made private and
    overwritten with the unit's exact values."""
    sg = model.subgraphs[0]
    unmatched = [(u, u.tflite_kernel(u.values()[0])) for u in units]
    ops = []
    for index, op in enumerate(sg.operators):
        name = _op_name(model, op)
        if name not in _UNIT_KINDS:
            continue
        where = f"{name} '{sg.tensors[int(op.outputs[0])].name.decode()}'"
        weight_op = WeightOp(index, _match_unit(model, op, name, where, unmatched))
        _own_weights(model, index, name, weight_op)
        ops.append(weight_op)
    if unmatched:
        raise ConversionError(f"TensorFlow's converter left no op holding the weights of "
                              f"{[u.name for u, _ in unmatched]}; they cannot be trained")
    return ops


def _match_unit(model, op, name, where, unmatched):
    """Removes from `unmatched` and returns the first unit, in Keras order, of a kind
    this op can hold whose TFLite-layout kernel has the op's weight shape and values;
    failing that (TensorFlow folded a one-channel batch norm into this kernel), the
    first of that kind and shape."""
    kernel = _constant(model, int(op.inputs[1]))
    fits = [i for i, (unit, ours) in enumerate(unmatched)
            if kernel is not None and unit.kind in _UNIT_KINDS[name] and ours.shape == kernel.shape]
    same = [i for i in fits if np.allclose(kernel, unmatched[i][1], rtol=_MATCH_RTOL,
                                           atol=_MATCH_ATOL * float(np.abs(unmatched[i][1]).max()))]
    if not (same or fits):
        raise ConversionError(f"could not match {where} to a Keras weight layer (kinds {_UNIT_KINDS[name]})")
    return unmatched.pop((same or fits)[0])[0]


def _next_op(model, tensor):
    """The one op reading `tensor` through any reshapes: (index, op), or (None, None)."""
    sg = model.subgraphs[0]
    while True:
        readers = [(i, op) for i, op in enumerate(sg.operators) if tensor in [int(t) for t in op.inputs]]
        if len(readers) != 1:
            return None, None
        index, op = readers[0]
        if _op_name(model, op) not in _ALIASES:
            return index, op
        tensor = int(op.outputs[0])


def _constant_operand(model, op, channels):
    """The input index of an elementwise op's constant operand with `channels` values, or None."""
    for k in (0, 1):
        values = _constant(model, int(op.inputs[k]))
        if values is not None and values.size == channels and _constant(model, int(op.inputs[1 - k])) is None:
            return k
    return None


def _own_weights(model, index, name, weight_op):
    """Gives the op weight and bias tensors of its own holding the unit's exact values:
    TensorFlow's converter shares identical constants between ops, folds batch norm
    with its own rounding, folds a linear layer's bias into the next layer's, and keeps
    a one-channel layer's bias (and batch norm) out of the op as ADD (MUL, ADD) ops."""
    op = model.subgraphs[0].operators[index]
    unit = weight_op.unit
    kernel, bias = unit.values()
    inputs = [int(i) for i in op.inputs] + [-1] * (3 - len(op.inputs))
    inputs[1] = _private_tensor(model, inputs[1], f"{unit.name}/kernel", unit.tflite_kernel(kernel))
    # The kernel's name says which Keras layer an op holds, trainable or not (inspect shows it).
    model.subgraphs[0].tensors[inputs[1]].name = f"{unit.name}/kernel".encode()
    channels = _shape(model, int(op.outputs[0]))[-1]
    split = _split_bias(model, op, channels) if bias is not None else None
    if split is not None:
        # The op keeps a frozen zero bias (if it has one); the ADD's constant is the
        # bias that trains; a batch norm's MUL and ADD after it become identities.
        bias_index, bias_k, identities = split
        add = model.subgraphs[0].operators[bias_index]
        add.inputs[bias_k] = _private_tensor(model, int(add.inputs[bias_k]), f"{unit.name}/bias", bias)
        for other, k, value in identities:
            other_op = model.subgraphs[0].operators[other]
            other_op.inputs[k] = _private_tensor(model, int(other_op.inputs[k]), f"{unit.name}/identity{other}",
                                                 np.full(channels, value, np.float32))
        weight_op.bias_op = bias_index
        bias = None
    if bias is not None:
        inputs[2] = _private_tensor(model, inputs[2], f"{unit.name}/bias", bias)
    elif name == "FULLY_CONNECTED" and inputs[2] < 0:
        weight_op.has_bias = False  # FULLY_CONNECTED takes an omitted bias everywhere
    else:
        # Stock TFLite refuses CONV_2D/DEPTHWISE_CONV_2D without a bias tensor (and TFLM
        # crashes on a DEPTHWISE_CONV_2D whose bias input is -1), so the op keeps a zero
        # bias of its own that never trains.
        inputs[2] = _private_tensor(model, inputs[2], f"{unit.name}/zero_bias", np.zeros(channels, np.float32))
        weight_op.has_bias = False
    op.inputs = np.array(inputs, np.int32)


def _split_bias(model, op, channels):
    """When TensorFlow kept the bias out of the op: (index of the ADD that adds it,
    which input is the constant, [(index, input, value)] of a batch norm's MUL and ADD
    that follow, to become identities). None when the bias is the op's own."""
    activation = getattr(op.builtinOptions, "fusedActivationFunction", 0)
    index, add = _next_op(model, int(op.outputs[0]))
    if activation or add is None or _op_name(model, add) != "ADD":
        return None
    k = _constant_operand(model, add, channels)
    if k is None:
        return None
    identities = []
    index_mul, mul = _next_op(model, int(add.outputs[0]))
    if mul is not None and _op_name(model, mul) == "MUL" and _constant_operand(model, mul, channels) is not None:
        index_shift, shift = _next_op(model, int(mul.outputs[0]))
        if shift is not None and _op_name(model, shift) == "ADD" \
                and _constant_operand(model, shift, channels) is not None:
            identities = [(index_mul, _constant_operand(model, mul, channels), 1.0),
                          (index_shift, _constant_operand(model, shift, channels), 0.0)]
    return index, k, identities


def mark_trainable(ops, units, trainable):
    """Sets WeightOp.trainable from the user's choice (see keras_model.trainable_units)."""
    chosen = {id(u) for u in keras_model.trainable_units(units, trainable)}
    for op in ops:
        op.trainable = id(op.unit) in chosen


def add_metadata(model, name, payload):
    """Sets the metadata entry `name` to `payload`, reusing its buffer if it exists."""
    schema = _schema()
    model.metadata = model.metadata or []
    entry = next((m for m in model.metadata if m.name == name.encode()), None)
    if entry is None:
        entry = schema.MetadataT()
        entry.name = name.encode()
        entry.buffer = _new_buffer(model, payload)
        model.metadata.append(entry)
    else:
        model.buffers[entry.buffer].data = np.frombuffer(bytes(payload), np.uint8)
