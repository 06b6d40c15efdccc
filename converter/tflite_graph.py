"""TFLite side of conversion: read the graph TensorFlow's converter produced,
map it to plan ops, and give every trainable tensor a buffer of its own."""

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConversionError
from . import keras_model

_OP_KINDS = {"FULLY_CONNECTED": 0, "RELU": 1, "RELU6": 2, "LOGISTIC": 3, "TANH": 4, "SOFTMAX": 5, "RESHAPE": 6}
_FUSED = {0: 0, 1: 1, 3: 2}  # TFLite ActivationFunctionType NONE/RELU/RELU6 -> plan FusedActivation


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
    keras_layer: object = field(default=None, repr=False)


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


def _tensor_data(model, index):
    t = model.subgraphs[0].tensors[index]
    data = model.buffers[t.buffer].data
    return None if data is None else np.frombuffer(bytes(bytearray(data)), np.float32)


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


def plan_ops(model, dense):
    """Plan ops for subgraph 0, in the converter's (topological) order.

    `dense` is keras_model.dense_layers(): each FULLY_CONNECTED op is matched to the
    Dense layer whose kernel it holds (TFLite stores it transposed, [out, in]); an
    omitted all-zero bias is materialized and shared tensors/buffers are split, so
    every weight and bias is one tensor owning one buffer, read by one op.
    """
    sg = model.subgraphs[0]
    unmatched = list(dense)
    ops = []
    for op in sg.operators:
        name = _op_name(model, op)
        if name not in _OP_KINDS:
            raise ConversionError(f"TensorFlow's converter produced a {name} op, which the trainer does not "
                                  f"support (supported ops: {', '.join(_OP_KINDS)})")
        inputs = [int(i) for i in op.inputs]
        out = int(op.outputs[0])
        out_name = sg.tensors[out].name.decode()
        plan_op = PlanOp(kind=_OP_KINDS[name], inputs=[inputs[0]], output=out, name=out_name)
        options = op.builtinOptions
        if name == "FULLY_CONNECTED":
            fused = int(options.fusedActivationFunction)
            if fused not in _FUSED or options.keepNumDims:
                raise ConversionError(f"FULLY_CONNECTED '{out_name}' has an unsupported fused activation "
                                      f"or keep_num_dims")
            plan_op.activation = _FUSED[fused]
            kernel_t = _tensor_data(model, inputs[1])
            match = next((d for d in unmatched if kernel_t is not None and d[1].size == kernel_t.size
                          and np.array_equal(d[1].T.reshape(-1), kernel_t)), None)
            if match is None:
                raise ConversionError(f"could not match FULLY_CONNECTED '{out_name}' to a Keras Dense layer")
            unmatched.remove(match)
            layer, kernel, bias = match
            plan_op.name = layer.name
            plan_op.keras_layer = layer
            # Weights and bias get tensors of their own holding Keras' exact values:
            # TensorFlow's converter may share identical constants between layers and
            # folds a linear layer's bias into the next layer's, which training must undo.
            inputs = list(inputs) + [-1] * (3 - len(inputs))
            inputs[1] = _private_tensor(model, inputs[1], f"{layer.name}/kernel", kernel.T)
            if bias is not None:
                inputs[2] = _private_tensor(model, inputs[2], f"{layer.name}/bias", bias)
            else:
                inputs[2] = -1  # a bias folded in from a linear layer before it
            op.inputs = np.array(inputs, np.int32)
            plan_op.weights = int(inputs[1])
            plan_op.bias = int(inputs[2])
        elif name == "SOFTMAX" and float(options.beta) != 1.0:
            raise ConversionError(f"SOFTMAX '{out_name}' has beta {options.beta}; only 1 is supported")
        ops.append(plan_op)
    return ops


def mark_trainable(model, ops, trainable):
    """Sets PlanOp.trainable from the user's choice."""
    weighted = [op for op in ops if op.weights >= 0]
    chosen = keras_model.choose_trainable([op.name for op in weighted],
                                          [op.keras_layer.trainable for op in weighted], trainable)
    for op in weighted:
        op.trainable = op.name in chosen


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
