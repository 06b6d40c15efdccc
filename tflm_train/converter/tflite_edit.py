"""Graph surgery on parsed TFLite models (TensorFlow's object API): keep a run of
operators as a model of its own, and join two models so that the first one's output
feeds the second. The int8 path uses them to cut a model into its frozen part and the
part that trains (split deployment), and to join them again into one file."""

import copy

import numpy as np

from . import tflite_graph as G


def _code_key(code):
    return (int(code.builtinCode), int(code.deprecatedBuiltinCode), code.customCode, int(code.version))


def _uses(op):
    return [int(t) for t in op.inputs if t >= 0] + [int(t) for t in op.outputs] + \
        [int(t) for t in (op.intermediates if op.intermediates is not None else []) if t >= 0]


def _renumber(op, tensor_map, code_map):
    """Points `op` at renumbered tensors and operator codes."""
    op.inputs = np.array([tensor_map[int(t)] if t >= 0 else -1 for t in op.inputs], np.int32)
    op.outputs = np.array([tensor_map[int(t)] for t in op.outputs], np.int32)
    if op.intermediates is not None:
        op.intermediates = np.array([tensor_map[int(t)] for t in op.intermediates if t >= 0], np.int32)
    op.opcodeIndex = code_map[int(op.opcodeIndex)]


def keep(model, op_indices, inputs, outputs):
    """A new model of subgraph 0's operators `op_indices` (in that order) with graph
    inputs and outputs given as tensor indices of `model`. Tensors, buffers and operator
    codes nothing uses any more are dropped and the rest renumbered; signature defs
    (which name tensor indices) are dropped, other metadata kept."""
    source = model
    model = copy.deepcopy(source)
    sg = model.subgraphs[0]
    ops = [sg.operators[i] for i in op_indices]
    used = []
    for t in list(inputs) + [t for op in ops for t in _uses(op)] + list(outputs):
        if t not in used:
            used.append(t)
    tensor_map = {old: new for new, old in enumerate(sorted(used))}
    buffers_used = sorted({0} | {int(sg.tensors[t].buffer) for t in used} |
                          {int(m.buffer) for m in (model.metadata or [])})
    buffer_map = {old: new for new, old in enumerate(buffers_used)}
    codes_used = sorted({int(op.opcodeIndex) for op in ops})
    code_map = {old: new for new, old in enumerate(codes_used)}

    tensors = []
    for old in sorted(used):
        tensor = sg.tensors[old]
        tensor.buffer = buffer_map[int(tensor.buffer)]
        tensors.append(tensor)
    for op in ops:
        _renumber(op, tensor_map, code_map)
    sg.tensors = tensors
    sg.operators = ops
    sg.inputs = np.array([tensor_map[int(t)] for t in inputs], np.int32)
    sg.outputs = np.array([tensor_map[int(t)] for t in outputs], np.int32)
    model.subgraphs = [sg]
    model.buffers = [model.buffers[b] for b in buffers_used]
    for m in model.metadata or []:
        m.buffer = buffer_map[int(m.buffer)]
    model.metadataBuffer = None
    model.operatorCodes = [model.operatorCodes[c] for c in codes_used]
    model.signatureDefs = None
    return model


def compact(model):
    """Drops, in place, the tensors, buffers and operator codes no operator uses any more."""
    sg = model.subgraphs[0]
    kept = keep(model, list(range(len(sg.operators))), [int(t) for t in sg.inputs], [int(t) for t in sg.outputs])
    model.__dict__.update(kept.__dict__)


def join(first, second):
    """One model: `first`'s operators, then `second`'s reading `first`'s (single) output
    where `second` read its (single) input. The two tensors must hold the same number of
    elements of one type; the joined tensor keeps `first`'s shape (the ops that read it
    take their input by element count: FULLY_CONNECTED, or the same shape). Metadata
    comes from `first`."""
    model = copy.deepcopy(first)
    second = copy.deepcopy(second)
    sg, other = model.subgraphs[0], second.subgraphs[0]
    link, replaced = int(sg.outputs[0]), int(other.inputs[0])
    a, b = sg.tensors[link], other.tensors[replaced]
    if int(a.type) != int(b.type) or int(np.prod(a.shape)) != int(np.prod(b.shape)):
        raise ValueError(f"cannot join: the first model's output {list(a.shape)} and the second's input "
                         f"{list(b.shape)} differ in type or size")
    buffer_map = {0: 0}
    for i, buffer in enumerate(second.buffers):
        if i > 0:
            model.buffers.append(buffer)
            buffer_map[i] = len(model.buffers) - 1
    codes = {_code_key(c): i for i, c in enumerate(model.operatorCodes)}
    code_map = {}
    for i, code in enumerate(second.operatorCodes):
        key = _code_key(code)
        if key not in codes:
            model.operatorCodes.append(code)
            codes[key] = len(model.operatorCodes) - 1
        code_map[i] = codes[key]
    tensor_map = {}
    for i, tensor in enumerate(other.tensors):
        if i == replaced:
            tensor_map[i] = link
            continue
        tensor.buffer = buffer_map[int(tensor.buffer)]
        sg.tensors.append(tensor)
        tensor_map[i] = len(sg.tensors) - 1
    for op in other.operators:
        _renumber(op, tensor_map, code_map)
        sg.operators.append(op)
    sg.outputs = np.array([tensor_map[int(t)] for t in other.outputs], np.int32)
    model.signatureDefs = None
    return model


def add_operator(model, kind, inputs, outputs, version=1, position=None):
    """Inserts a builtin operator of name `kind` (no options) at `position` (the end
    when None), reusing or adding its operator code; returns its index."""
    schema = G._schema()
    number = getattr(schema.BuiltinOperator, kind)
    index = next((i for i, c in enumerate(model.operatorCodes)
                  if max(int(c.builtinCode), int(c.deprecatedBuiltinCode)) == number and c.customCode is None),
                 None)
    if index is None:
        code = schema.OperatorCodeT()
        code.builtinCode = number
        code.deprecatedBuiltinCode = min(number, 127)
        code.version = version
        model.operatorCodes.append(code)
        index = len(model.operatorCodes) - 1
    op = schema.OperatorT()
    op.opcodeIndex = index
    op.inputs = np.array(inputs, np.int32)
    op.outputs = np.array(outputs, np.int32)
    ops = model.subgraphs[0].operators
    position = len(ops) if position is None else position
    ops.insert(position, op)
    return position


def add_activation(model, name, shape, tensor_type):
    """A new activation tensor (no data) of subgraph 0; returns its index."""
    schema = G._schema()
    tensor = schema.TensorT()
    tensor.shape = np.array(shape, np.int32)
    tensor.type = tensor_type
    tensor.name = name.encode()
    tensor.buffer = 0
    model.subgraphs[0].tensors.append(tensor)
    return len(model.subgraphs[0].tensors) - 1


def fold_reshape_shapes(model):
    """RESHAPEs whose target shape the graph computes at run time (TensorFlow's Flatten
    gives SHAPE -> STRIDED_SLICE -> PACK) take their static output shape as a constant
    instead, and the ops nothing reads any more are dropped. The trainer, like TFLM,
    then needs no shape arithmetic. Returns the model (changed in place)."""
    sg = model.subgraphs[0]
    changed = False
    for op in sg.operators:
        if G._op_name(model, op) != "RESHAPE" or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        shape_tensor = int(op.inputs[1])
        data = model.buffers[sg.tensors[shape_tensor].buffer].data
        if data is not None and len(data) > 0:
            continue
        out_shape = np.array(G._shape(model, int(op.outputs[0])), np.int32)
        tensor = G._schema().TensorT()
        tensor.shape = np.array([len(out_shape)], np.int32)
        tensor.type = G._schema().TensorType.INT32
        tensor.name = f"{sg.tensors[shape_tensor].name.decode()}/static".encode()
        tensor.buffer = G._new_buffer(model, out_shape.tobytes())
        sg.tensors.append(tensor)
        op.inputs[1] = len(sg.tensors) - 1
        changed = True
    if not changed:
        return model
    while True:  # drop ops whose outputs nobody reads, last ones first
        read = {int(t) for op in sg.operators for t in op.inputs} | {int(t) for t in sg.outputs}
        dead = [i for i, op in enumerate(sg.operators) if not any(int(t) in read for t in op.outputs)]
        if not dead:
            break
        for i in reversed(dead):
            del sg.operators[i]
    compact(model)
    return model
