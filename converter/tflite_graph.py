"""TFLite side of conversion: read the graph TensorFlow's converter produced,
map every op to a plan op (each weight op matched to its Keras weight unit),
and give every weight and bias tensor a buffer of its own holding our values."""

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConversionError
from . import keras_model

# TFLite builtin op -> plan OpKind (EXPAND_DIMS and SQUEEZE only reshape, too).
_OP_KINDS = {"FULLY_CONNECTED": 0, "RELU": 1, "RELU6": 2, "LOGISTIC": 3, "TANH": 4, "SOFTMAX": 5,
             "RESHAPE": 6, "EXPAND_DIMS": 6, "SQUEEZE": 6, "CONV_2D": 7, "DEPTHWISE_CONV_2D": 8,
             "MAX_POOL_2D": 9, "AVERAGE_POOL_2D": 10, "MEAN": 11, "PAD": 12, "ADD": 13}
# Weight ops and the WeightUnit kinds each can hold.
_UNIT_KINDS = {"FULLY_CONNECTED": ("dense",),
               "CONV_2D": ("conv1d", "conv2d", "separable_pointwise"),
               "DEPTHWISE_CONV_2D": ("depthwise", "separable_depthwise")}
_FUSED = {0: 0, 1: 1, 3: 2}  # TFLite ActivationFunctionType NONE/RELU/RELU6 -> plan FusedActivation
_DTYPES = {0: np.float32, 2: np.int32, 4: np.int64}  # TFLite TensorType -> numpy, for constants we read
# Kernel matching: TensorFlow folds batch norm into the kernel in float32 with its own
# operation order, so its values differ from ours by a few ulps (observed <= 1e-7
# relative to max|w|); distinct layers differ by O(max|w|).
_MATCH_RTOL = 1e-4
_MATCH_ATOL = 1e-6


@dataclass
class PlanOp:
    kind: int
    inputs: list
    output: int
    weights: int = -1
    bias: int = -1
    activation: int = 0
    trainable: bool = False
    name: str = ""
    # Convolution and pooling options, as TFLite's op carries them (plan schema defaults).
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    padding: int = 1            # plan Padding: Same = 0, Valid = 1 (TFLite's values)
    filter_h: int = 0
    filter_w: int = 0
    depth_multiplier: int = 1
    pad_before: list = None     # Pad only
    pad_after: list = None
    unit: object = field(default=None, repr=False)  # the keras_model.WeightUnit of a weight op


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


def plan_ops(model, units):
    """Plan ops for subgraph 0, in the converter's (topological) order.

    `units` are keras_model.weight_units(): each FULLY_CONNECTED / CONV_2D /
    DEPTHWISE_CONV_2D op is matched to the unit whose kernel it holds, and its
    weight and bias tensors are made private and overwritten with the unit's exact
    values. Raises ConversionError naming any op or option the trainer cannot run.
    """
    sg = model.subgraphs[0]
    unmatched = [(u, u.tflite_kernel(u.values()[0])) for u in units]
    ops = []
    for op in sg.operators:
        name = _op_name(model, op)
        if name not in _OP_KINDS:
            raise ConversionError(f"TensorFlow's converter produced a {name} op, which the trainer does not "
                                  f"support (supported ops: {', '.join(_OP_KINDS)})")
        out = int(op.outputs[0])
        plan_op = PlanOp(kind=_OP_KINDS[name], inputs=[int(op.inputs[0])], output=out,
                         name=sg.tensors[out].name.decode())
        where = f"{name} '{plan_op.name}'"
        if name in _UNIT_KINDS:
            unit = _match_unit(model, op, name, where, unmatched)
            _read_weight_op_options(model, op, name, where, plan_op)
            plan_op.name, plan_op.unit = unit.name, unit
            _own_weights(model, op, name, unit, plan_op)
        elif name in _READERS:
            _READERS[name](model, op, where, plan_op)
        ops.append(plan_op)
    if unmatched:
        raise ConversionError(f"TensorFlow's converter left no op holding the weights of "
                              f"{[u.name for u, _ in unmatched]}; they cannot be trained")
    return ops


def _match_unit(model, op, name, where, unmatched):
    """Removes from `unmatched` and returns the first unit, in Keras order, of a kind
    this op can hold whose TFLite-layout kernel has the op's weight shape and values."""
    kernel = _constant(model, int(op.inputs[1]))
    for i, (unit, ours) in enumerate(unmatched):
        if (kernel is not None and unit.kind in _UNIT_KINDS[name] and ours.shape == kernel.shape
                and np.allclose(kernel, ours, rtol=_MATCH_RTOL, atol=_MATCH_ATOL * float(np.abs(ours).max()))):
            del unmatched[i]
            return unit
    raise ConversionError(f"could not match {where} to a Keras weight layer (kinds {_UNIT_KINDS[name]})")


def _fused_activation(options, where):
    fused = 0 if options is None else int(options.fusedActivationFunction)
    if fused not in _FUSED:
        raise ConversionError(f"{where} has fused activation #{fused}; only NONE, RELU and RELU6 are supported")
    return _FUSED[fused]


def _read_weight_op_options(model, op, name, where, plan_op):
    options = op.builtinOptions
    plan_op.activation = _fused_activation(options, where)
    if name == "FULLY_CONNECTED":
        if options.keepNumDims:
            raise ConversionError(f"{where} has keep_num_dims, which is not supported")
        return
    plan_op.stride_h, plan_op.stride_w = int(options.strideH), int(options.strideW)
    plan_op.dilation_h, plan_op.dilation_w = int(options.dilationHFactor), int(options.dilationWFactor)
    plan_op.padding = int(options.padding)
    if name == "DEPTHWISE_CONV_2D":
        plan_op.depth_multiplier = int(options.depthMultiplier)
        channels_in = _shape(model, int(op.inputs[0]))[-1]
        channels_out = _shape(model, int(op.inputs[1]))[-1]
        if channels_in * plan_op.depth_multiplier != channels_out:
            raise ConversionError(f"{where} has depth multiplier {plan_op.depth_multiplier}, which does not "
                                  f"turn {channels_in} input channels into {channels_out}")


def _own_weights(model, op, name, unit, plan_op):
    """Gives the op weight and bias tensors of its own holding the unit's exact values:
    TensorFlow's converter shares identical constants between ops, folds batch norm
    with its own rounding and folds a linear layer's bias into the next layer's."""
    kernel, bias = unit.values()
    inputs = [int(i) for i in op.inputs] + [-1] * (3 - len(op.inputs))
    inputs[1] = _private_tensor(model, inputs[1], f"{unit.name}/kernel", unit.tflite_kernel(kernel))
    if bias is not None:
        inputs[2] = _private_tensor(model, inputs[2], f"{unit.name}/bias", bias)
        plan_op.bias = inputs[2]
    elif name == "FULLY_CONNECTED":
        inputs[2] = -1  # FULLY_CONNECTED takes an omitted bias everywhere
    else:
        # Stock TFLite refuses CONV_2D/DEPTHWISE_CONV_2D without a bias tensor (and TFLM
        # crashes on a DEPTHWISE_CONV_2D whose bias input is -1), so the op keeps a zero
        # bias of its own that the plan does not list: it never trains.
        zeros = np.zeros(_shape(model, plan_op.output)[-1], np.float32)
        inputs[2] = _private_tensor(model, inputs[2], f"{unit.name}/zero_bias", zeros)
    op.inputs = np.array(inputs, np.int32)
    plan_op.weights = inputs[1]


def _read_pool(model, op, where, plan_op):
    options = op.builtinOptions
    plan_op.activation = _fused_activation(options, where)
    plan_op.stride_h, plan_op.stride_w = int(options.strideH), int(options.strideW)
    plan_op.filter_h, plan_op.filter_w = int(options.filterHeight), int(options.filterWidth)
    plan_op.padding = int(options.padding)


def _read_mean(model, op, where, plan_op):
    """MEAN is only global average pooling: over every axis between batch and channels."""
    rank = len(_shape(model, plan_op.inputs[0]))
    axes = _constant(model, int(op.inputs[1]))
    if axes is None or rank < 3 or sorted(int(a) % rank for a in np.ravel(axes)) != list(range(1, rank - 1)):
        raise ConversionError(f"{where} averages a rank-{rank} tensor over axes "
                              f"{None if axes is None else np.ravel(axes).tolist()}; only global average "
                              f"pooling (axes 1..{rank - 2}) is supported")


def _read_pad(model, op, where, plan_op):
    rank = len(_shape(model, plan_op.inputs[0]))
    paddings = _constant(model, int(op.inputs[1]))
    if paddings is None or paddings.shape != (rank, 2) or np.any(paddings < 0) or np.any(paddings[0] != 0):
        raise ConversionError(f"{where} has paddings {None if paddings is None else paddings.tolist()}; "
                              "only constant, non-negative padding that leaves the batch axis alone is supported")
    plan_op.pad_before = [int(p) for p in paddings[:, 0]]
    plan_op.pad_after = [int(p) for p in paddings[:, 1]]


def _without_leading_ones(shape):
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _read_add(model, op, where, plan_op):
    a, b = int(op.inputs[0]), int(op.inputs[1])
    if _constant(model, a) is not None or _constant(model, b) is not None:
        raise ConversionError(f"{where} adds a constant; only the sum of two layer outputs is supported")
    # TensorFlow may feed one operand through a squeeze ([1, 1, 1, C] + [C]); leading 1s
    # do not change the elementwise order, any other broadcast would.
    if _without_leading_ones(_shape(model, a)) != _without_leading_ones(_shape(model, b)):
        raise ConversionError(f"{where} adds tensors of shapes {_shape(model, a)} and {_shape(model, b)}; "
                              "broadcasting is not supported, the shapes must be equal")
    plan_op.inputs = [a, b]
    plan_op.activation = _fused_activation(op.builtinOptions, where)


def _read_softmax(model, op, where, plan_op):
    if float(op.builtinOptions.beta) != 1.0:
        raise ConversionError(f"{where} has beta {op.builtinOptions.beta}; only 1 is supported")


# Option readers of the ops without weights (ops not listed have no options the plan keeps).
_READERS = {"MAX_POOL_2D": _read_pool, "AVERAGE_POOL_2D": _read_pool, "MEAN": _read_mean, "PAD": _read_pad,
            "ADD": _read_add, "SOFTMAX": _read_softmax}


def mark_trainable(ops, units, trainable):
    """Sets PlanOp.trainable from the user's choice (see keras_model.trainable_units)."""
    chosen = {id(u) for u in keras_model.trainable_units(units, trainable)}
    for op in ops:
        op.trainable = op.unit is not None and id(op.unit) in chosen


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


def io_tensors(model):
    sg = model.subgraphs[0]
    return int(sg.inputs[0]), int(sg.outputs[0])
