"""Full-integer (int8) files and split deployment: a model cut at its first trainable
op into a frozen backbone, which stays as the file has it (int8 runs at CMSIS-NN speed),
and a head that trains in float32. The head's int8 ops are rewritten as float ones:
weights and biases dequantized, activations float, the QUANTIZE/DEQUANTIZE pairs
inside it dropped. Joined again, the two give one mixed-precision file with a
DEQUANTIZE at the boundary that stock TFLM runs unchanged (docs/int8.md)."""

import numpy as np

from ..errors import ConversionError
from . import tflite_edit
from . import tflite_graph as G

FLOAT32, INT32, UINT8, INT64, INT16, INT8, INT4 = 0, 2, 3, 4, 7, 9, 17
_FLOAT16 = 1
_REFUSED_TYPES = {
    UINT8: "uint8 (asymmetric) quantization is not supported; re-quantize the model as int8",
    INT16: "int16 activations (16x8 quantization) are not supported; quantize the model as int8",
    INT4: "int4 weights are not supported; quantize the model as int8",
    _FLOAT16: "float16 models are not supported; give the float32 or the int8 model",
}
_WEIGHT_OPS = tuple(G._UNIT_KINDS)
_PASS_THROUGH = ("QUANTIZE", "DEQUANTIZE")   # identities once the head is float


def _tensor(model, index):
    return model.subgraphs[0].tensors[index]


def _name(model, index):
    return _tensor(model, index).name.decode(errors="replace")


def _describe(model, index):
    op = model.subgraphs[0].operators[index]
    return f"{G._op_name(model, op)} '{_name(model, int(op.outputs[0]))}'"


def _is_constant(model, index):
    data = model.buffers[_tensor(model, index).buffer].data
    return data is not None and len(data) > 0


def is_int8(model):
    """Whether subgraph 0 has int8 tensors (a full-integer or mixed model)."""
    return any(int(t.type) == INT8 for t in model.subgraphs[0].tensors)


def check(model):
    """Refuses, naming the op, quantization the trainer cannot run: uint8, int16, int4 and
    float16 tensors, int8 weights on float activations (dynamic-range, or hybrid,
    models) and int8 weights with a zero point (asymmetric)."""
    sg = model.subgraphs[0]
    for index, op in enumerate(sg.operators):
        for t in [int(t) for t in op.inputs if t >= 0] + [int(t) for t in op.outputs]:
            problem = _REFUSED_TYPES.get(int(sg.tensors[t].type))
            if problem is not None:
                raise ConversionError(f"{problem}: {_describe(model, index)} has tensor '{_name(model, t)}' "
                                      f"of that type")
        kind = G._op_name(model, op)
        if kind not in _WEIGHT_OPS or len(op.inputs) < 2 or int(sg.tensors[int(op.inputs[1])].type) != INT8:
            continue
        if int(sg.tensors[int(op.outputs[0])].type) != INT8:
            raise ConversionError(f"{_describe(model, index)} has int8 weights on float activations: a "
                                  "dynamic-range (hybrid) model, which the trainer does not run; convert the "
                                  "model as full-integer int8 (with a representative dataset) or as float32")
        q = sg.tensors[int(op.inputs[1])].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            raise ConversionError(f"{_describe(model, index)} has int8 weights without a scale")
        if q.zeroPoint is not None and np.any(np.asarray(q.zeroPoint) != 0):
            raise ConversionError(f"{_describe(model, index)} has asymmetric int8 weights (a nonzero zero "
                                  "point); TFLite's int8 kernels take symmetric weights only")


def dequantized(model, index):
    """The float32 values of constant int8/int32 tensor `index`: scale * (q - zero_point),
    per tensor or per channel along its quantized dimension."""
    tensor = _tensor(model, index)
    dtype = {INT8: np.int8, INT32: np.int32}[int(tensor.type)]
    shape = G._shape(model, index)
    q = np.frombuffer(bytes(bytearray(model.buffers[tensor.buffer].data)), dtype).reshape(shape)
    params = tensor.quantization
    if params is None or params.scale is None or len(params.scale) == 0:
        raise ConversionError(f"constant '{_name(model, index)}' is {dtype.__name__} without a scale")
    scale = np.asarray(params.scale, np.float64)
    zero = np.asarray(params.zeroPoint if params.zeroPoint is not None else np.zeros_like(scale), np.float64)
    if len(scale) > 1:
        axis = int(params.quantizedDimension)
        view = [1] * len(shape)
        view[axis] = len(scale)
        scale, zero = scale.reshape(view), zero.reshape(view)
    return ((q.astype(np.float64) - zero) * scale).astype(np.float32)


def boundary(model, first):
    """The one tensor the ops from `first` on read from before it (an earlier op's output
    or the model input). Refused when they read several: the cut must hand over one."""
    sg = model.subgraphs[0]
    produced_before = {int(t) for op in sg.operators[:first] for t in op.outputs} | {int(t) for t in sg.inputs}
    read = []
    for op in sg.operators[first:]:
        for t in op.inputs:
            t = int(t)
            if t >= 0 and t in produced_before and t not in read:
                read.append(t)
    if len(read) != 1:
        raise ConversionError(f"the ops from {_describe(model, first)} on read {len(read)} tensors of the frozen "
                              f"part ({', '.join(repr(_name(model, t)) for t in read)}); the frozen part must "
                              "hand one tensor to the trainable part: choose a first trainable op after the "
                              "last branch joins")
    return read[0]


def backbone(model, first, link):
    """The ops before `first` as a model of their own, ending in `link`; an int8 `link`
    is dequantized by a DEQUANTIZE so the backbone hands float32 to the head."""
    sg = model.subgraphs[0]
    part = tflite_edit.keep(model, list(range(first)), [int(t) for t in sg.inputs], [link])
    out = int(part.subgraphs[0].outputs[0])
    if int(part.subgraphs[0].tensors[out].type) == INT8:
        features = tflite_edit.add_activation(part, f"{_name(part, out)}/dequantized", G._shape(part, out), FLOAT32)
        tflite_edit.add_operator(part, "DEQUANTIZE", [out], [features], version=2)
        part.subgraphs[0].outputs = np.array([features], np.int32)
    return part


def float_head(model, first, link):
    """The ops from `first` on as a float32 model that takes `link` as its input. Returns
    (model, names of the int8 ops rewritten as float)."""
    sg = model.subgraphs[0]
    part = tflite_edit.keep(model, list(range(first, len(sg.operators))), [link], [int(t) for t in sg.outputs])
    rewritten = _to_float(part)
    _drop_identities(part)
    return part, rewritten


def _to_float(model):
    sg = model.subgraphs[0]
    rewritten = []
    for index, op in enumerate(sg.operators):
        kind = G._op_name(model, op)
        was_int8 = False
        for position, t in enumerate(int(t) for t in op.inputs):
            if t < 0:
                continue
            tensor = sg.tensors[t]
            constant = _is_constant(model, t)
            bias = kind in _WEIGHT_OPS and position == 2
            if constant and (int(tensor.type) == INT8 or (bias and int(tensor.type) == INT32)):
                values = dequantized(model, t)
                was_int8 = True
                op.inputs[position] = G._private_tensor(model, t, _name(model, t), values)
                new = sg.tensors[int(op.inputs[position])]
                new.type, new.quantization = FLOAT32, None
        for t in [int(t) for t in op.inputs if t >= 0] + [int(t) for t in op.outputs]:
            tensor = sg.tensors[t]
            if int(tensor.type) == INT8 and not _is_constant(model, t):
                tensor.type, tensor.quantization = FLOAT32, None
                was_int8 = True
        if was_int8 and kind not in _PASS_THROUGH:
            rewritten.append(_describe(model, index))
    return rewritten


def _drop_identities(model):
    """QUANTIZE/DEQUANTIZE between two float tensors: readers take the input instead."""
    sg = model.subgraphs[0]
    for op in list(sg.operators):
        if G._op_name(model, op) not in _PASS_THROUGH:
            continue
        source, target = int(op.inputs[0]), int(op.outputs[0])
        if int(sg.tensors[source].type) != FLOAT32 or int(sg.tensors[target].type) != FLOAT32:
            continue
        sg.operators.remove(op)
        for other in sg.operators:
            other.inputs = np.array([source if int(t) == target else int(t) for t in other.inputs], np.int32)
        sg.outputs = np.array([source if int(t) == target else int(t) for t in sg.outputs], np.int32)
    tflite_edit.compact(model)


def float_input(model):
    """A model that takes float32: an int8 input gets a QUANTIZE in front of it."""
    sg = model.subgraphs[0]
    old = int(sg.inputs[0])
    if int(sg.tensors[old].type) != INT8:
        return model
    new = tflite_edit.add_activation(model, f"{_name(model, old)}/float", G._shape(model, old), FLOAT32)
    tflite_edit.add_operator(model, "QUANTIZE", [new], [old], version=2, position=0)
    sg.inputs = np.array([new], np.int32)
    return model
