"""Helpers of tests/test_int8.py: full-integer (and refused) .tflite files made by
TensorFlow's own converter at batch size 1, the pip TFLM runtime on int8 or float
inputs, and int8 weights dequantized by TensorFlow's interpreter (not by tflm_train)."""

import numpy as np

import keras
import tensorflow as tf

L = keras.layers


def mlp3(input_dim=24, classes=4):
    """An MLP of three Dense layers: with trainable=1 its frozen part is two int8
    FULLY_CONNECTED ops."""
    return keras.Sequential([
        keras.Input((input_dim,)),
        L.Dense(32, activation="relu", name="d0"),
        L.Dense(16, activation="relu", name="d1"),
        L.Dense(classes, activation="softmax", name="out"),
    ], name="mlp3")


def samples(model, n, seed=0):
    """n Gaussian input samples for the model (float32)."""
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(0.0, 1.0, (n,) + shape).astype(np.float32)


def to_tflite(model, *, representative=None, io="float", mode="int8"):
    """TensorFlow's converter on the model at batch size 1, as a TFLM user deploys it.

    mode "int8": full-integer int8 calibrated on `representative`, with float32 ("float")
    or int8 ("int8", inference_input/output_type=tf.int8) input and output; "int16x8":
    TensorFlow's 16-bit-activation mode; "dynamic": dynamic-range (hybrid) weights."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([convert_variables_to_constants_v2(function)])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode != "dynamic":
        converter.representative_dataset = lambda: ([x[None]] for x in representative)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if mode == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def io_details(model_bytes):
    """(input details, output details) of the pip TFLM runtime: dtype, shape, quantization."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes))
    return interpreter.get_input_details(0), interpreter.get_output_details(0)


def quantize_input(x, details):
    """TFLite's QUANTIZE of float samples into an int8 input: round(x / scale) + zero
    point, rounding half away from zero, saturated."""
    scale = np.float32(details["quantization_parameters"]["scales"][0])
    zero = int(details["quantization_parameters"]["zero_points"][0])
    v = np.asarray(x, np.float32) / scale
    rounded = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(rounded + zero, -128, 127).astype(np.int8)


def dequantize_output(y, details):
    scale = float(details["quantization_parameters"]["scales"][0])
    zero = int(details["quantization_parameters"]["zero_points"][0])
    return ((np.asarray(y, np.float64) - zero) * scale).astype(np.float32)


def tflm_run(model_bytes, x):
    """Every sample of x through the pip TFLM runtime, in x's own dtype (int8 or float32);
    the raw outputs, stacked."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes))
    outs = []
    for sample in x:
        interpreter.set_input(np.ascontiguousarray(sample[None]), 0)
        interpreter.invoke()
        outs.append(np.array(interpreter.get_output(0))[0])
    return np.stack(outs)


def dequantized_weight_ops(model_bytes):
    """[(op name, float32 weights in TFLite's layout, float32 bias or None)] of every
    FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D of an int8 file, in graph order, as
    TensorFlow's interpreter reads the int8 constants and their (per-channel) scales."""
    interpreter = tf.lite.Interpreter(model_content=bytes(model_bytes))
    interpreter.allocate_tensors()
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}

    def dequantize(index):
        d = tensors[index]
        q = interpreter.get_tensor(index).astype(np.float64)
        scales = np.asarray(d["quantization_parameters"]["scales"], np.float64)
        zeros = np.asarray(d["quantization_parameters"]["zero_points"], np.float64)
        if len(scales) > 1:
            view = [1] * q.ndim
            view[d["quantization_parameters"]["quantized_dimension"]] = len(scales)
            scales, zeros = scales.reshape(view), zeros.reshape(view)
        return ((q - zeros) * scales).astype(np.float32)

    out = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
            inputs = list(op["inputs"])
            bias = dequantize(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else None
            out.append((op["op_name"], dequantize(inputs[1]), bias))
    return out
