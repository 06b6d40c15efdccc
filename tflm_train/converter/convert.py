"""tflm_train.convert: a Keras model (convert) or a plain float .tflite (convert_tflite) becomes one trainable .tflite."""

import os
import re

from .. import _core
from ..errors import ConversionError, TrainerError
from ..optimizers import SGD
from ..policies import POLICY_TYPES, Full, Policy
from . import int8_model, keras_model, tflite_edit, tflite_file, tflite_graph
from .plan_writer import LOSSES, PLAN_METADATA_NAME, STATE_METADATA_NAME, build_plan

_LOSS_ALIASES = {
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "mse": "mean_squared_error",
    "mean_squared_error": "mean_squared_error",
    "binary_crossentropy": "binary_crossentropy",
}
_LOSS_CLASSES = {
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "MeanSquaredError": "mean_squared_error",
    "BinaryCrossentropy": "binary_crossentropy",
}


def loss_name(loss):
    """The canonical Keras name of a loss given by name, alias or Keras loss object."""
    if isinstance(loss, str):
        if loss not in _LOSS_ALIASES:
            raise ConversionError(f"loss '{loss}' is not supported; use one of {sorted(_LOSS_ALIASES)}")
        return _LOSS_ALIASES[loss]
    kind = type(loss).__name__
    if kind not in _LOSS_CLASSES:
        raise ConversionError(f"loss {kind} is not supported; use one of {sorted(_LOSS_ALIASES)}")
    config = loss.get_config()
    if config.get("from_logits") or config.get("label_smoothing"):
        raise ConversionError("from_logits and label_smoothing are not supported: end the model in "
                              "softmax/sigmoid instead")
    return _LOSS_CLASSES[kind]


def _check_operators(graph, source="TensorFlow's converter produced"):
    """Names the first operator the trainer does not run (its registry is the list)."""
    supported = _core.supported_operators()
    for op in graph.subgraphs[0].operators:
        name = tflite_graph._op_name(graph, op)
        if name not in supported:
            output = graph.subgraphs[0].tensors[int(op.outputs[0])].name.decode(errors="replace")
            raise ConversionError(f"{source} a {name} op ('{output}'), which the trainer does not run "
                                  f"(it runs {', '.join(supported)})")


def _check_loss_fits(loss, graph):
    last = tflite_graph._op_name(graph, graph.subgraphs[0].operators[-1])
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy") and last != "SOFTMAX":
        raise ConversionError(f"{loss} needs a model whose last layer ends in softmax")
    if loss == "binary_crossentropy" and last != "LOGISTIC":
        raise ConversionError("binary_crossentropy needs a model whose last layer ends in sigmoid")


def convert(model, *, loss, optimizer, trainable=None, policy=None, batch_size=1, quantize=None,
            representative_data=None, split=False):
    """Converts a Keras model into a trainable .tflite (bytes).

    The result runs inference in stock TFLite/TFLM unchanged and carries a
    training plan that tflm_train's C++ trainer reads.

    Args:
      model: a built Keras Sequential or Functional model (channels_last) of
        Dense, Conv1D, Conv2D, DepthwiseConv2D and SeparableConv2D layers (a
        BatchNormalization right after a linear one is folded into it);
        MaxPooling1D/2D, AveragePooling1D/2D, GlobalAveragePooling1D/2D,
        ZeroPadding1D/2D and Add (two equal shapes); Activation (linear, relu,
        relu6, sigmoid, tanh, softmax), ReLU, Softmax, Flatten, Reshape and
        Dropout layers (Dropout is dropped).
      loss: "sparse_categorical_crossentropy" or "categorical_crossentropy"
        (model ends in softmax), "mse", or "binary_crossentropy" (ends in sigmoid);
        the matching Keras loss objects are accepted too.
      optimizer: a `tflm_train.SGD` (or a `keras.optimizers.SGD`).
      trainable: None for every layer Keras marks trainable; a list of layer
        names; or an int N for the last N weight layers (a SeparableConv2D
        counts once and trains both its halves).
      policy: a policy (`Full()` when None): `StaticTopK`, `TinyProp`, `TinyPropV2`, or a baseline
        (`LastLayers`, `BiasOnly`, `SparseUpdate`, `TinyTrain`; docs/baselines.md).
      batch_size: samples per update the on-device arena is planned for.
      quantize: None (float32), or "int8": the layers before the first trainable one
        become a full-integer int8 backbone (TensorFlow's converter, per-channel
        weights, calibrated on `representative_data`); the trainable layers and
        everything after them stay float32, behind a DEQUANTIZE.
      representative_data: with quantize="int8", input samples (an array whose first
        axis counts samples, up to a few hundred are used) or a callable that returns
        an iterable of [sample batch] lists, as TensorFlow's representative_dataset.
      split: True returns (backbone, head): the frozen layers as a plain .tflite of
        their own (ending in float32) and the trainable file that takes their output.

    Raises:
      ConversionError: for an unsupported layer, loss or option (the message names it).
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ConversionError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ConversionError("the model is not built: give it an Input or call it once")
    options = _training_options(loss, optimizer, policy, batch_size)

    keras_model.check_layers(model)
    graph = tflite_graph.read(keras_model.to_tflite(model))
    units = keras_model.weight_units(model)
    ops = tflite_graph.weight_ops(graph, units)
    _check_operators(graph)
    _check_loss_fits(options[0], graph)
    tflite_graph.mark_trainable(ops, units, trainable)
    what = "what TensorFlow's converter made of this model"
    if quantize is None and not split:
        if representative_data is not None:
            raise ConversionError("representative_data is only used with quantize=\"int8\"")
        return _write_trainable(graph, ops, options, what)
    if quantize not in (None, "int8"):
        raise ConversionError(f"quantize must be None or \"int8\", got {quantize!r}")
    first = min(op.index for op in ops if op.trainable)
    if first == 0:
        option = 'quantize="int8"' if quantize else "split=True"
        raise ConversionError(f"{option} needs frozen layers before the first trainable one, and the model's "
                              "first op trains")
    link = int8_model.boundary(graph, first)
    sg = graph.subgraphs[0]
    head = tflite_edit.keep(graph, list(range(first, len(sg.operators))), [link], [int(t) for t in sg.outputs])
    if quantize == "int8":
        quantized = tflite_edit.fold_reshape_shapes(
            tflite_graph.read(keras_model.to_tflite(model, _representative(representative_data, model))))
        first_q = _same_op(graph, quantized, first)
        front = int8_model.backbone(quantized, first_q, int8_model.boundary(quantized, first_q))
    else:
        front = tflite_edit.keep(graph, list(range(first)), [int(t) for t in sg.inputs], [link])
    if split:
        return tflite_graph.write(front), _write_trainable(head, _moved(ops, first, 0), options, what)
    joined = tflite_edit.join(front, head)
    return _write_trainable(joined, _moved(ops, first, len(front.subgraphs[0].operators)), options, what)


def _representative(data, model):
    """TensorFlow's representative_dataset from samples or a callable."""
    if data is None:
        raise ConversionError("quantize=\"int8\" needs representative_data: input samples to calibrate on")
    if callable(data):
        return data
    import numpy as np

    samples = np.asarray(data, np.float32)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if samples.ndim != len(shape) + 1 or samples.shape[1:] != shape or len(samples) == 0:
        raise ConversionError(f"representative_data must be samples shaped (n, {', '.join(map(str, shape))}), "
                              f"got {samples.shape}")
    return lambda: ([samples[i:i + 1]] for i in range(min(len(samples), 500)))


def _same_op(graph, quantized, index):
    """The op of the int8 graph that is op `index` of the float one: TensorFlow's int8
    conversion keeps the ops in order and only adds QUANTIZE/DEQUANTIZE."""
    def plain(model):
        return [i for i, op in enumerate(model.subgraphs[0].operators)
                if tflite_graph._op_name(model, op) not in ("QUANTIZE", "DEQUANTIZE")]

    ours, theirs = plain(graph), plain(quantized)
    names = [tflite_graph._op_name(graph, graph.subgraphs[0].operators[i]) for i in ours]
    names_q = [tflite_graph._op_name(quantized, quantized.subgraphs[0].operators[i]) for i in theirs]
    if names != names_q or index not in ours:
        raise ConversionError("TensorFlow's int8 conversion changed the model's ops (float: "
                              f"{', '.join(names)}; int8: {', '.join(names_q)}); the int8 backbone cannot be "
                              "matched to the float layers")
    return theirs[ours.index(index)]


def _moved(ops, first, offset):
    """The weight ops from `first` on, renumbered for a graph whose op `first` is now `offset`."""
    import dataclasses

    def move(i):
        return i - first + offset if i >= 0 else i
    return [dataclasses.replace(op, index=move(op.index), bias_op=move(op.bias_op)) for op in ops if op.index >= first]


def convert_tflite(model_bytes, *, loss, optimizer, trainable=None, policy=None, batch_size=1, split=False,
                   verbose=1):
    """Gives an existing .tflite (bytes or a path), float32 or full-integer int8, a
    training plan without its Keras model: the result still runs in stock TFLite/TFLM
    and trains in tflm_train.

    The weight ops are found in the graph itself: FULLY_CONNECTED, CONV_2D and
    DEPTHWISE_CONV_2D with constant weights; each op's bias trains when the file has one
    (a per-channel ADD of a constant right after an op without a bias of its own counts
    as its bias). Loss, optimizer, policy and batch_size are as for `convert`.

    An int8 file keeps its ops before the first trainable one in int8 (a frozen
    backbone the trainer runs with TFLite's integer arithmetic); from there on every op
    is rewritten as float32 (weights and biases dequantized), with a DEQUANTIZE at the
    boundary, and the model's input and output become float32.

    Args:
      trainable: None for every weight op; an int N for the last N weight ops; or names
        (a string or a list): a weight op's output tensor name as Netron shows it, the
        name of its weights tensor, or one `;`-separated part of its output tensor's
        name that names one op only.
      split: True returns (backbone, head): the ops before the first trainable one as a
        plain .tflite of their own (an int8 backbone ends in a DEQUANTIZE, so it hands
        over float32), and the trainable file that takes the backbone's output.
      verbose: 1 prints what an int8 file became (ops rewritten, size, input and output
        types); 0 is silent.

    Raises:
      ConversionError: one sentence naming the op for what the trainer cannot take:
        uint8, int16, int4 or float16 tensors, dynamic-range (hybrid) models, asymmetric
        int8 weights, an int8 op the trainer has no int8 kernel for, a second subgraph,
        dynamic shapes other than the batch, an operator the trainer does not run, more
        than one input or output, a file that already carries a training plan, and
        bytes that are not a TFLite model.
    """
    if isinstance(model_bytes, (str, os.PathLike)):
        with open(model_bytes, "rb") as f:
            model_bytes = f.read()
    elif not isinstance(model_bytes, (bytes, bytearray, memoryview)):
        raise ConversionError(f"model_bytes must be the bytes of a .tflite or its path, got "
                              f"{type(model_bytes).__name__}")
    options = _training_options(loss, optimizer, policy, batch_size)
    graph = tflite_edit.fold_reshape_shapes(tflite_file.read(model_bytes))
    tflite_file.check(graph)
    int8_model.check(graph)
    if not split:  # a split backbone runs in TFLM alone: only the head's ops must be the trainer's
        _check_operators(graph, source="this .tflite has")
    if int8_model.is_int8(graph) or split:
        candidates = tflite_file.find_weight_ops(graph)
        tflite_file.mark_trainable(graph, candidates, trainable)
        first = min(op.index for op in candidates if op.trainable)
        if split and first == 0:
            raise ConversionError(f"split=True needs frozen ops before the first trainable one "
                                  f"({tflite_file.describe_op(graph, first)} is the first op)")
        link = int8_model.boundary(graph, first)
        head, rewritten = int8_model.float_head(graph, first, link)
        front = int8_model.backbone(graph, first, link) if first > 0 else None
        if split:
            _check_operators(head, source="the trainable part of this .tflite has")
            return tflite_graph.write(front), _plan_file(head, trainable, options, "the head of this .tflite")
        joined = int8_model.float_input(tflite_edit.join(front, head)) if front is not None else head
        result = _plan_file(joined, trainable, options, "this .tflite")
        if verbose and int8_model.is_int8(graph):
            _report_int8(graph, joined, rewritten, len(bytes(model_bytes)), len(result))
        return result
    return _plan_file(graph, trainable, options, "this .tflite")


def _plan_file(graph, trainable, options, what):
    """The float weight ops of `graph` marked as `trainable` chooses, and the file with its plan."""
    _check_loss_fits(options[0], graph)
    ops = tflite_file.weight_ops(graph)
    tflite_file.mark_trainable(graph, ops, trainable)
    return _write_trainable(graph, ops, options, what)


def _report_int8(source, joined, rewritten, size_before, size_after):
    def io(model, which):
        index = int(getattr(model.subgraphs[0], which)[0])
        return "float32" if int(model.subgraphs[0].tensors[index].type) == int8_model.FLOAT32 else "int8"
    frozen = sum(1 for op in joined.subgraphs[0].operators
                 if any(int(joined.subgraphs[0].tensors[int(t)].type) == int8_model.INT8 for t in op.outputs))
    print(f"convert_tflite: {frozen} int8 ops stay a frozen int8 backbone; {len(rewritten)} rewritten as float32 "
          f"to train ({', '.join(rewritten)}); the file grows from {size_before:,} to {size_after:,} bytes; "
          f"input {io(source, 'inputs')} -> {io(joined, 'inputs')}, output {io(source, 'outputs')} -> "
          f"{io(joined, 'outputs')}")


def _training_options(loss, optimizer, policy, batch_size):
    """(loss name, tflm_train.SGD, policy, batch size), checked."""
    loss = loss_name(loss)
    if not isinstance(optimizer, SGD):
        try:
            optimizer = SGD.from_keras(optimizer)
        except (TypeError, ValueError) as e:
            raise ConversionError(str(e)) from None
    policy = Full() if policy is None else policy
    if not isinstance(policy, Policy):
        raise ConversionError(f"policy must be {POLICY_TYPES}")
    if int(batch_size) != batch_size or not 1 <= batch_size <= 65536:
        raise ConversionError(f"batch_size must be an integer from 1 to 65536, got {batch_size!r}")
    return loss, optimizer, policy, int(batch_size)


def _write_trainable(graph, ops, options, what):
    """The graph's bytes with the training plan for its trainable `ops` and room for the
    training state, both as metadata: the arena plan and the state's size are what the
    C++ measures for this very file, which also validates every operator."""
    loss, optimizer, policy, batch_size = options
    layers = [op.plan_layer() for op in ops if op.trainable]

    def assemble(memory, state_bytes=0):
        plan = build_plan(layers, loss, optimizer, policy, batch_size, memory, state_bytes)
        tflite_graph.add_metadata(graph, PLAN_METADATA_NAME, plan)
        if memory is not None:  # the trainer saves its state here, so a file resumes training
            tflite_graph.add_metadata(graph, STATE_METADATA_NAME, bytes(state_bytes))
        return tflite_graph.write(graph)

    try:
        memory, state_bytes = _core.measure_arena(assemble(None))
    except TrainerError as e:
        raise ConversionError(f"the trainer cannot train {what}: {_with_tensor_name(graph, str(e))}") from None
    return assemble(memory, state_bytes)


def _with_tensor_name(graph, message):
    """The trainer names operators by index; TensorFlow names their outputs after the
    Keras layers, so the message gets that name too."""
    match = re.search(r"operator (\d+)", message)
    operators = graph.subgraphs[0].operators
    if match is None or int(match.group(1)) >= len(operators):
        return message
    output = graph.subgraphs[0].tensors[int(operators[int(match.group(1))].outputs[0])]
    return f"{message} (its output is '{output.name.decode(errors='replace')}')"


__all__ = ["convert", "convert_tflite", "loss_name", "LOSSES"]
