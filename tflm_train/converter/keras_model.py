"""Keras side of conversion: check that every layer is one the trainer handles,
find the weight layers (with the BatchNormalization folded into each), and run
TensorFlow's own TFLiteConverter on the model frozen at batch size 1 (static
shapes, as TFLM needs). The reference trainer uses the same weight units, so
both train the same parameters."""

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConversionError

ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax")
WEIGHT_LAYERS = ("Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D")
SUPPORTED_LAYERS = ("InputLayer",) + WEIGHT_LAYERS + (
    "BatchNormalization", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "ZeroPadding1D", "ZeroPadding2D", "Add",
    "Activation", "ReLU", "Softmax", "Flatten", "Reshape", "Dropout")
_CHANNELS_LAST = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling1D", "MaxPooling2D",
                  "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                  "ZeroPadding2D")


def _keras_parent(layer):
    """(name of the supported Keras class `layer` is or derives from, or its own class
    name; the subclass on the way there that replaces `call`, or None)."""
    own_call = None
    for cls in type(layer).__mro__:
        if cls.__name__ in SUPPORTED_LAYERS and cls.__module__.startswith("keras."):
            return cls.__name__, own_call
        if own_call is None and "call" in vars(cls):
            own_call = cls
    return type(layer).__name__, None


def layer_kind(layer):
    """The supported Keras layer `layer` is: a subclass (e.g. a shim loaded with
    custom_objects) counts as its Keras parent."""
    return _keras_parent(layer)[0]


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


def run_graph(model, inputs, call):
    """Runs a Sequential/Functional model (nested models opened up) layer by layer:
    every layer is replaced by `call(layer, *args, **kwargs)`, which returns its output."""
    import keras

    graph = model._functional if isinstance(model, keras.Sequential) else model
    if not hasattr(graph, "_run_through_graph"):
        raise ConversionError(f"model '{model.name}' is not a Sequential or Functional model; subclassed "
                              "models cannot be converted")

    def operation(op):
        if isinstance(op, keras.Model):
            return lambda *args, **kwargs: run_graph(op, args[0], call)
        return lambda *args, **kwargs: call(op, *args, **kwargs)

    return graph._run_through_graph(inputs, operation_fn=operation)


@dataclass
class TracedLayer:
    layer: object
    inputs: list                # producing TracedLayer of each input, None for the model input
    consumers: list = field(default_factory=list)


def trace(model):
    """The model's layers in execution order, each with its producers and consumers."""
    import keras

    produced = {}
    order = []

    def call(layer, *args, **kwargs):
        flat = [t for t in keras.tree.flatten((args, kwargs)) if hasattr(t, "shape")]
        node = TracedLayer(layer, [produced.get(id(t)) for t in flat])
        for source in node.inputs:
            if source is not None:
                source.consumers.append(node)
        out = layer(*args, **kwargs)
        produced[id(out)] = node
        order.append(node)
        return out

    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    run_graph(model, np.zeros(shape, np.float32), call)
    return order


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


def _layer_problem(layer):
    """What makes a layer unsupported on its own, or None."""
    kind, own_call = _keras_parent(layer)
    if kind not in SUPPORTED_LAYERS:
        return "is not supported"
    if own_call is not None:
        return (f"subclasses {kind} but overrides call() in {own_call.__name__}, so its math may not be "
                f"{kind}'s; use {kind} itself, or a subclass that leaves call() alone")
    if kind in WEIGHT_LAYERS + ("Activation",) and _activation_name(layer.activation) not in ACTIVATIONS:
        return f"uses activation '{_activation_name(layer.activation)}', which is not supported"
    if kind in _CHANNELS_LAST and getattr(layer, "data_format", "channels_last") != "channels_last":
        return "uses data_format channels_first; TFLite works in channels_last (NHWC)"
    if kind in ("Conv1D", "Conv2D") and layer.groups != 1:
        return "is a grouped convolution (groups > 1)"
    if (kind in WEIGHT_LAYERS and kind != "Dense" and max(layer.strides) > 1
            and max(layer.dilation_rate) > 1):
        # TensorFlow then builds a dilated kernel from extra ops, which TFLite keeps.
        return "combines strides > 1 with dilation_rate > 1"
    if kind == "ReLU" and (float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0
                           or layer.max_value not in (None, 6, 6.0)):
        return "is a leaky/thresholded/capped ReLU other than ReLU or ReLU6"
    if kind == "Softmax" and layer.axis not in (-1, [-1], (-1,)):
        return "takes softmax over an axis other than the last"
    if kind == "Dense" and len(layer.input.shape) != 2:
        return "is applied to a rank-3+ input (flatten it first)"
    if kind == "BatchNormalization" and layer.axis not in (-1, len(layer.input.shape) - 1, [-1],
                                                           [len(layer.input.shape) - 1]):
        return "normalizes an axis other than the last"
    return None


def _connection_problem(node):
    """What makes a layer unsupported where it sits in the graph, or None."""
    kind = layer_kind(node.layer)
    if kind == "Add" and len(node.inputs) != 2:
        return "adds more than two tensors"
    if kind == "BatchNormalization":
        source = node.inputs[0] if node.inputs else None
        if (source is None or layer_kind(source.layer) not in WEIGHT_LAYERS
                or _activation_name(source.layer.activation) != "linear" or len(source.consumers) != 1):
            return ("does not directly follow a linear Dense/Conv layer whose only consumer it is, so it "
                    "cannot be folded into that layer")
    return None


def check_layers(model):
    """Raises ConversionError naming the first layer the trainer cannot handle. Layers are
    checked on their own first: the graph is traced (run once) only when they all pass."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(f"model '{model.name}' has {len(model.inputs)} inputs and {len(model.outputs)} "
                              "outputs; tflm_train trains models with exactly one of each")
    supported = ", ".join(SUPPORTED_LAYERS) + f" (activations: {', '.join(ACTIVATIONS)})"

    def refuse(layer, problem):
        raise ConversionError(f"layer '{layer.name}' ({type(layer).__name__}) {problem}; "
                              f"supported layers: {supported}")

    for layer in flat_layers(model):
        problem = _layer_problem(layer)
        if problem:
            refuse(layer, problem)
    for node in trace(model):
        problem = _connection_problem(node)
        if problem:
            refuse(node.layer, problem)


def to_tflite(model, representative_dataset=None):
    """Float32 .tflite bytes from TensorFlow's converter, batch fixed to 1; with a
    representative_dataset, full-integer int8 (float32 input and output)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    if any(d is None or d <= 0 for d in shape[1:]):
        raise ConversionError(f"the input shape {tuple(model.inputs[0].shape)} must be fully known")
    spec = tf.TensorSpec(shape, tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(function)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if representative_dataset is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        return bytes(converter.convert())
    except Exception as e:  # TensorFlow's converter raises several types; report them as ours
        raise ConversionError(f"TensorFlow's TFLite converter failed on this model: {e}") from e


# --- weight units: what one trainable op of the micro model holds -------------------

@dataclass
class WeightUnit:
    """One weight op of the micro model: a Dense/Conv1D/Conv2D/DepthwiseConv2D layer, or
    one half of a SeparableConv2D, with the BatchNormalization folded into it, if any.

    kind: "dense", "conv1d", "conv2d", "depthwise", "separable_depthwise" or
    "separable_pointwise". The kernel is in Keras' layout; `tflite_kernel` gives
    TFLite's (dense [out, in]; convolutions OHWI; depthwise [1, KH, KW, C_in*mult]).
    """
    name: str                   # the layer's name; "<layer>/depthwise", "<layer>/pointwise" for separable
    layer: object
    kind: str
    batchnorm: object = None

    @property
    def kernel_variable(self):
        return {"separable_depthwise": "depthwise_kernel",
                "separable_pointwise": "pointwise_kernel"}.get(self.kind, "kernel")

    @property
    def has_own_bias(self):
        return self.kind != "separable_depthwise" and bool(self.layer.use_bias)

    @property
    def has_bias(self):
        """Whether the micro op carries a bias (its own, or one made by folding batch norm)."""
        return self.has_own_bias or self.batchnorm is not None

    def values(self):
        """(kernel in Keras' layout, bias or None) as float32, batch norm folded in."""
        kernel = np.asarray(getattr(self.layer, self.kernel_variable).numpy(), np.float32)
        bias = np.asarray(self.layer.bias.numpy(), np.float32) if self.has_own_bias else None
        if self.batchnorm is None:
            return kernel, bias
        return fold_batchnorm(self.kind, kernel, bias, self.batchnorm)

    def tflite_kernel(self, kernel):
        """Keras layout -> TFLite layout."""
        kernel = np.asarray(kernel, np.float32)
        if self.kind == "dense":
            return np.ascontiguousarray(kernel.T)
        if self.kind == "conv1d":                       # [K, C_in, C_out] -> [C_out, 1, K, C_in]
            return np.ascontiguousarray(kernel.transpose(2, 0, 1)[:, None])
        if self.kind in ("depthwise", "separable_depthwise"):  # [KH, KW, C_in, M] -> [1, KH, KW, C_in*M]
            kh, kw, c, m = kernel.shape
            return np.ascontiguousarray(kernel.reshape(1, kh, kw, c * m))
        return np.ascontiguousarray(kernel.transpose(3, 0, 1, 2))  # [KH, KW, C_in, C_out] -> OHWI

    def keras_kernel(self, tflite_kernel):
        """TFLite layout -> Keras layout (the inverse of tflite_kernel)."""
        w = np.asarray(tflite_kernel, np.float32)
        shape = tuple(getattr(self.layer, self.kernel_variable).shape)
        if self.kind == "dense":
            return np.ascontiguousarray(w.T)
        if self.kind == "conv1d":
            return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))
        if self.kind in ("depthwise", "separable_depthwise"):
            return np.ascontiguousarray(w.reshape(shape))
        return np.ascontiguousarray(w.transpose(1, 2, 3, 0))


def fold_batchnorm(kind, kernel, bias, bn):
    """Folds an inference-mode BatchNormalization into the layer before it (float32):
    inv = gamma / sqrt(variance + epsilon); kernel * inv per output channel;
    bias' = (bias - mean) * inv + beta."""
    f32 = np.float32
    channels = int(bn.moving_mean.shape[0])
    gamma = np.asarray(bn.gamma.numpy(), f32) if bn.scale else np.ones(channels, f32)
    beta = np.asarray(bn.beta.numpy(), f32) if bn.center else np.zeros(channels, f32)
    mean = np.asarray(bn.moving_mean.numpy(), f32)
    inv = (gamma / np.sqrt(np.asarray(bn.moving_variance.numpy(), f32) + f32(bn.epsilon))).astype(f32)
    if kind in ("depthwise", "separable_depthwise"):
        kernel = kernel * inv.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * inv
    bias = np.zeros(channels, f32) if bias is None else bias
    return kernel.astype(f32), ((bias - mean) * inv + beta).astype(f32)


def weight_units(model):
    """The model's WeightUnits in execution order (a SeparableConv2D gives two)."""
    units = []
    for node in trace(model):
        layer = node.layer
        kind = layer_kind(layer)
        if kind not in WEIGHT_LAYERS:
            continue
        bn = None
        if len(node.consumers) == 1 and layer_kind(node.consumers[0].layer) == "BatchNormalization":
            bn = node.consumers[0].layer
        if kind == "SeparableConv2D":
            units.append(WeightUnit(f"{layer.name}/depthwise", layer, "separable_depthwise"))
            units.append(WeightUnit(f"{layer.name}/pointwise", layer, "separable_pointwise", bn))
        else:
            units.append(WeightUnit(layer.name, layer, {"Dense": "dense", "Conv1D": "conv1d", "Conv2D": "conv2d",
                                                        "DepthwiseConv2D": "depthwise"}[kind], bn))
    return units


def trainable_units(units, trainable):
    """The units that train: `trainable` as for convert (None, layer names, or the last N
    weight layers), counted in Keras layers; both halves of a SeparableConv2D go together."""
    names, flags = [], []
    for u in units:
        if u.layer.name not in names:
            names.append(u.layer.name)
            flags.append(bool(u.layer.trainable))
    chosen = choose_trainable(names, flags, trainable)
    return [u for u in units if u.layer.name in chosen]
