"""Keras side of conversion: check that every layer is one the trainer handles,
then run TensorFlow's own TFLiteConverter on the model frozen at batch size 1
(static shapes, as TFLM needs)."""

import numpy as np

from ..errors import ConversionError

ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax")
SUPPORTED_LAYERS = ("InputLayer", "Dense", "Activation", "ReLU", "Softmax", "Flatten", "Reshape", "Dropout")


def flat_layers(model):
    """Layers in order, with nested models opened up."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def choose_trainable(names, trainable_by_default, trainable):
    """The set of weight-layer names that train.

    names: weight layers in order; trainable_by_default: their Keras `trainable`
    flags (used when `trainable` is None); trainable: None, a list of names (or one
    name), or an int N for the last N weight layers.
    """
    if trainable is None:
        chosen = {n for n, flag in zip(names, trainable_by_default) if flag}
    elif isinstance(trainable, int) and not isinstance(trainable, bool):
        if not 1 <= trainable <= len(names):
            raise ConversionError(f"trainable={trainable}: the model has {len(names)} weight layers")
        chosen = set(names[-trainable:])
    else:
        chosen = set([trainable] if isinstance(trainable, str) else trainable)
        unknown = chosen - set(names)
        if unknown:
            raise ConversionError(f"trainable names unknown layers {sorted(unknown)}; weight layers: {names}")
    if not chosen:
        raise ConversionError("no layer would train: choose at least one weight layer")
    return chosen


def _activation_name(fn):
    import keras

    name = keras.activations.serialize(fn)
    return name if isinstance(name, str) else getattr(fn, "__name__", repr(fn))


def check_layers(model):
    """Raises ConversionError naming the first layer the trainer cannot handle."""
    supported = ", ".join(SUPPORTED_LAYERS) + f" (activations: {', '.join(ACTIVATIONS)})"
    for layer in flat_layers(model):
        kind = type(layer).__name__
        problem = None
        if kind not in SUPPORTED_LAYERS:
            problem = "is not supported"
        elif kind in ("Dense", "Activation") and _activation_name(layer.activation) not in ACTIVATIONS:
            problem = f"uses activation '{_activation_name(layer.activation)}', which is not supported"
        elif kind == "ReLU" and (float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0
                                 or layer.max_value not in (None, 6, 6.0)):
            problem = "is a leaky/thresholded/capped ReLU other than ReLU or ReLU6"
        elif kind == "Softmax" and layer.axis not in (-1, [-1], (-1,)):
            problem = "takes softmax over an axis other than the last"
        elif kind == "Dense" and len(layer.input.shape) != 2:
            problem = "is applied to a rank-3+ input (flatten it first)"
        if problem:
            raise ConversionError(f"layer '{layer.name}' ({kind}) {problem}; supported layers: {supported}")


def to_tflite(model):
    """Float32 .tflite bytes from TensorFlow's converter, batch fixed to 1."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError("the model must have exactly one input and one output")
    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    if any(d is None or d <= 0 for d in shape[1:]):
        raise ConversionError(f"the input shape {tuple(model.inputs[0].shape)} must be fully known")
    spec = tf.TensorSpec(shape, tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(function)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    return bytes(converter.convert())


def dense_layers(model):
    """(layer, kernel, bias or None) for every Dense layer, in order."""
    out = []
    for layer in flat_layers(model):
        if type(layer).__name__ == "Dense":
            kernel = np.asarray(layer.kernel.numpy(), np.float32)
            bias = np.asarray(layer.bias.numpy(), np.float32) if layer.use_bias else None
            out.append((layer, kernel, bias))
    return out
