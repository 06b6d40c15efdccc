"""CNN builders shared by the CNN tests: a battery of single-feature layer
configurations, the papers' 5-layer CNNs (2-D for 28x28x1 images, 1-D for
128x6 sensor windows), a small MobileNetV2-style network, and the reference
trainer's CNN configurations and batch-norm model."""

import numpy as np

import keras

L = keras.layers


def _head(x, loss, classes=3):
    final = "softmax" if loss != "mse" else "linear"
    if len(x.shape) > 2:
        x = L.Flatten(name="flat")(x)
    return L.Dense(classes, activation=final, name="head")(x)


def _chain(shape, layers):
    def build(loss):
        inp = keras.Input(shape)
        x = inp
        for layer in layers():
            x = layer(x)
        return keras.Model(inp, _head(x, loss))
    return build


def _residual(loss):
    inp = keras.Input((6, 6, 2))
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="c0")(inp)
    b = L.Conv2D(4, 3, padding="same", name="c1")(a)
    x = L.Add(name="add")([a, b])
    x = L.ReLU(6.0, name="relu6")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, _head(x, loss))


# name -> (builder(loss), loss). Every entry exercises a layer configuration.
LAYER_CONFIGS = {
    "conv2d_k3_valid_relu": (_chain((7, 7, 2), lambda: [L.Conv2D(4, 3, activation="relu")]), "sparse_categorical_crossentropy"),
    "conv2d_k3_s2_same": (_chain((8, 8, 2), lambda: [L.Conv2D(3, 3, strides=2, padding="same")]), "mse"),
    "conv2d_k5_s2_valid_relu6": (_chain((11, 11, 1), lambda: [L.Conv2D(4, 5, strides=2, activation="relu6")]),
                                 "sparse_categorical_crossentropy"),
    "conv2d_k1": (_chain((5, 5, 3), lambda: [L.Conv2D(5, 1)]), "mse"),
    "conv2d_rect_kernel_tanh": (_chain((6, 7, 2), lambda: [L.Conv2D(3, (3, 2), strides=(1, 2), padding="same",
                                                                    activation="tanh")]),
                                "sparse_categorical_crossentropy"),
    "conv2d_dilation2": (_chain((9, 9, 2), lambda: [L.Conv2D(3, 3, dilation_rate=2, padding="same")]), "mse"),
    "conv2d_k4_s3_same_uneven": (_chain((10, 10, 1), lambda: [L.Conv2D(2, 4, strides=3, padding="same",
                                                                       activation="relu")]),
                                 "sparse_categorical_crossentropy"),
    "depthwise_m1_same_relu": (_chain((6, 6, 3), lambda: [L.DepthwiseConv2D(3, padding="same", activation="relu")]),
                               "mse"),
    "depthwise_m2_s2_valid": (_chain((9, 9, 2), lambda: [L.DepthwiseConv2D(3, strides=2, depth_multiplier=2)]),
                              "sparse_categorical_crossentropy"),
    "depthwise_m3_k5_relu6": (_chain((6, 6, 2), lambda: [L.DepthwiseConv2D(5, depth_multiplier=3, padding="same",
                                                                           activation="relu6")]), "mse"),
    "separable_same_relu": (_chain((6, 6, 3), lambda: [L.SeparableConv2D(4, 3, padding="same", activation="relu")]),
                            "sparse_categorical_crossentropy"),
    "separable_m2_s2": (_chain((8, 8, 2), lambda: [L.SeparableConv2D(3, 3, strides=2, depth_multiplier=2)]), "mse"),
    "conv1d_k5_s2_same_relu": (_chain((20, 3), lambda: [L.Conv1D(4, 5, strides=2, padding="same", activation="relu")]),
                               "sparse_categorical_crossentropy"),
    "conv1d_dilation2": (_chain((16, 2), lambda: [L.Conv1D(3, 3, dilation_rate=2)]), "mse"),
    "conv1d_causal": (_chain((12, 2), lambda: [L.Conv1D(3, 3, padding="causal", activation="relu")]),
                      "sparse_categorical_crossentropy"),
    "maxpool2d_valid": (_chain((8, 8, 1), lambda: [L.Conv2D(3, 3, activation="relu"), L.MaxPooling2D(2)]), "mse"),
    "maxpool2d_same_s1": (_chain((6, 6, 2), lambda: [L.Conv2D(3, 3), L.MaxPooling2D(3, strides=1, padding="same")]),
                          "sparse_categorical_crossentropy"),
    "avgpool2d_same_s2": (_chain((7, 7, 2), lambda: [L.Conv2D(3, 3, activation="relu"),
                                                    L.AveragePooling2D(3, strides=2, padding="same")]), "mse"),
    "pool1d_max_avg": (_chain((20, 2), lambda: [L.Conv1D(4, 3), L.MaxPooling1D(2), L.Conv1D(3, 3, activation="relu"),
                                                L.AveragePooling1D(2, padding="same")]),
                       "sparse_categorical_crossentropy"),
    "gap2d": (_chain((6, 6, 2), lambda: [L.Conv2D(4, 3, activation="relu"), L.GlobalAveragePooling2D()]), "mse"),
    "gap1d_keepdims": (_chain((10, 3), lambda: [L.Conv1D(4, 3), L.GlobalAveragePooling1D(keepdims=True)]),
                       "sparse_categorical_crossentropy"),
    "zeropad2d_uneven": (_chain((6, 6, 2), lambda: [L.ZeroPadding2D(((1, 2), (0, 1))), L.Conv2D(3, 3, strides=2)]),
                         "mse"),
    "zeropad1d": (_chain((8, 2), lambda: [L.ZeroPadding1D(2), L.Conv1D(3, 3, activation="relu")]),
                  "sparse_categorical_crossentropy"),
    "residual_add_relu6": (_residual, "mse"),
    "relu6_layer": (_chain((6, 6, 2), lambda: [L.Conv2D(4, 3), L.ReLU(6.0)]), "sparse_categorical_crossentropy"),
}


def paper_cnn_2d(classes=10):
    """The papers' '5-layer DNN' with 2-D convolutions, for 28x28x1 images."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, activation="relu", name="conv2"),
        L.MaxPooling2D(2, name="pool2"),
        L.Conv2D(16, 3, activation="relu", name="conv3"),
        L.Flatten(name="flat"),
        L.Dense(32, activation="relu", name="fc1"),
        L.Dense(classes, activation="softmax", name="fc2"),
    ], name="paper_cnn_2d")


def paper_cnn_1d(classes=6):
    """The papers' '5-layer DNN' with 1-D convolutions, for 128x6 sensor windows."""
    return keras.Sequential([
        keras.Input((128, 6)),
        L.Conv1D(16, 5, strides=2, activation="relu", name="conv1"),
        L.MaxPooling1D(2, name="pool1"),
        L.Conv1D(16, 5, activation="relu", name="conv2"),
        L.MaxPooling1D(2, name="pool2"),
        L.Conv1D(32, 3, activation="relu", name="conv3"),
        L.GlobalAveragePooling1D(name="gap"),
        L.Dense(32, activation="relu", name="fc1"),
        L.Dense(classes, activation="softmax", name="fc2"),
    ], name="paper_cnn_1d")


def _bn(name):
    return L.BatchNormalization(name=name)


def _inverted_residual(x, expand, out, stride, name):
    """MobileNetV2's block: 1x1 expand + BN + ReLU6, 3x3 depthwise + BN + ReLU6,
    1x1 linear projection + BN, and a residual Add when shapes allow."""
    channels = int(x.shape[-1])
    h = L.Conv2D(expand, 1, use_bias=False, name=f"{name}_expand")(x)
    h = _bn(f"{name}_expand_bn")(h)
    h = L.ReLU(6.0, name=f"{name}_expand_relu")(h)
    if stride == 2:
        h = L.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(h)
    h = L.DepthwiseConv2D(3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                          name=f"{name}_depthwise")(h)
    h = _bn(f"{name}_depthwise_bn")(h)
    h = L.ReLU(6.0, name=f"{name}_depthwise_relu")(h)
    h = L.Conv2D(out, 1, use_bias=False, name=f"{name}_project")(h)
    h = _bn(f"{name}_project_bn")(h)
    if stride == 1 and channels == out:
        h = L.Add(name=f"{name}_add")([x, h])
    return h


def mobilenet_v2_style(input_shape=(16, 16, 3), classes=5):
    inp = keras.Input(input_shape)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = _bn("stem_bn")(x)
    x = L.ReLU(6.0, name="stem_relu")(x)
    x = _inverted_residual(x, 16, 8, 1, "block1")
    x = _inverted_residual(x, 24, 12, 2, "block2")
    x = _inverted_residual(x, 36, 12, 1, "block3")
    x = L.Conv2D(24, 1, use_bias=False, name="top")(x)
    x = _bn("top_bn")(x)
    x = L.ReLU(6.0, name="top_relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(classes, activation="softmax", name="classifier")(x)
    return keras.Model(inp, out, name="mobilenet_v2_style")


def randomize(model, seed):
    """Non-zero biases and non-trivial batch-norm parameters and statistics (fresh layers
    have zero biases and identity batch norms, which would hide folding mistakes).
    `seed` is an int or a numpy Generator."""
    from tflm_train.converter.keras_model import flat_layers

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    for layer in flat_layers(model):
        if getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
            if layer.center:
                layer.beta.assign(rng.normal(0.0, 0.3, c).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0.0, 0.3, c).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype(np.float32))


# --- the reference trainer's CNN configurations (tests/test_reference_cnn.py) -----------------
# Each builder takes the final activation ("softmax" or "linear") of its Dense 'out'.

def _out_head(h, classes, final):
    return L.Dense(classes, activation=final, name="out")(h)


def conv_valid_strided(final):
    """Conv2D valid stride 1, Conv2D same stride 2, MaxPooling2D valid."""
    inp = keras.Input((9, 9, 2))
    h = L.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = L.Conv2D(3, 3, strides=2, padding="same", activation="tanh", name="c2")(h)
    h = L.MaxPooling2D(2, name="pool")(h)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def conv_rect_same(final):
    """Rectangular kernel and strides, SAME padding; MaxPooling2D SAME with stride != size."""
    inp = keras.Input((9, 7, 3))
    h = L.Conv2D(4, (3, 2), strides=(2, 1), padding="same", activation="relu", name="c1")(inp)
    h = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(h)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def conv_dilated(final):
    """Dilated convolutions (SAME and VALID), AveragePooling2D VALID, GlobalAveragePooling2D."""
    inp = keras.Input((10, 10, 2))
    h = L.Conv2D(4, 3, dilation_rate=2, padding="same", activation="sigmoid", name="c1")(inp)
    h = L.Conv2D(3, 3, dilation_rate=(1, 2), name="c2")(h)
    h = L.AveragePooling2D(2, name="pool")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, _out_head(h, 4, final))


def depthwise_m1(final):
    """DepthwiseConv2D multiplier 1 SAME, a 1x1 Conv2D, AveragePooling2D SAME."""
    inp = keras.Input((8, 8, 3))
    h = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(inp)
    h = L.Conv2D(4, 1, name="pw")(h)
    h = L.AveragePooling2D(3, strides=2, padding="same", name="pool")(h)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def depthwise_m2(final):
    """DepthwiseConv2D multiplier 2, stride 2, VALID."""
    inp = keras.Input((9, 9, 2))
    h = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="tanh", name="dw")(inp)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def separable(final):
    """SeparableConv2D SAME with multiplier 2, then one strided VALID without bias."""
    inp = keras.Input((8, 8, 3))
    h = L.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu", name="s1")(inp)
    h = L.SeparableConv2D(4, 3, strides=2, use_bias=False, name="s2")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, _out_head(h, 4, final))


def conv1d(final):
    """Conv1D strided SAME and dilated VALID, 1-D pooling in both paddings, global average."""
    inp = keras.Input((16, 3))
    h = L.Conv1D(5, 3, strides=2, padding="same", activation="relu", name="k1")(inp)
    h = L.MaxPooling1D(2, padding="same", name="p1")(h)
    h = L.Conv1D(4, 2, dilation_rate=2, name="k2")(h)
    h = L.AveragePooling1D(2, padding="same", name="p2")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    return keras.Model(inp, _out_head(h, 4, final))


def conv1d_pad_relu6(final):
    """ZeroPadding1D, Conv1D with the relu6 activation, MaxPooling1D VALID, causal Conv1D."""
    inp = keras.Input((12, 2))
    h = L.ZeroPadding1D((2, 1), name="zp")(inp)
    h = L.Conv1D(4, 3, activation="relu6", name="k1")(h)
    h = L.MaxPooling1D(3, strides=2, name="p1")(h)
    h = L.Conv1D(3, 2, padding="causal", dilation_rate=2, name="k2")(h)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def zeropad2d_relu6(final):
    """ZeroPadding2D (asymmetric), a ReLU6 layer, AveragePooling2D SAME stride 1."""
    inp = keras.Input((6, 6, 2))
    h = L.ZeroPadding2D(((1, 2), (0, 1)), name="zp")(inp)
    h = L.Conv2D(4, 3, name="c1")(h)
    h = L.ReLU(max_value=6.0, name="relu6")(h)
    h = L.AveragePooling2D(2, strides=1, padding="same", name="pool")(h)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def residual(final):
    """A residual block: stem, two convolutions on one branch, identity skip, Add."""
    inp = keras.Input((8, 8, 3))
    stem = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inp)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="b1")(stem)
    h = L.Conv2D(4, 3, padding="same", name="b2")(h)
    h = L.Add(name="add")([stem, h])
    h = L.ReLU(name="relu")(h)
    h = L.MaxPooling2D(2, name="pool")(h)
    h = L.Conv2D(2, 1, name="squeeze")(h)
    return keras.Model(inp, _out_head(L.Flatten()(h), 4, final))


def nested_sequential(final):
    """A Sequential nested in a Sequential, Activation('relu6'), Dropout, Reshape, Softmax layer."""
    block = keras.Sequential([keras.Input((7, 7, 1)), L.Conv2D(3, 3, name="c1"), L.Activation("relu6", name="a1")],
                             name="block")
    layers = [keras.Input((7, 7, 1)), block, L.Reshape((75,), name="reshape"), L.Dropout(0.5, name="drop"),
              L.Dense(4, name="out")]
    if final == "softmax":
        layers.append(L.Softmax(name="softmax"))
    return keras.Sequential(layers)


REFERENCE_CNNS = {f.__name__: f for f in (conv_valid_strided, conv_rect_same, conv_dilated, depthwise_m1, depthwise_m2,
                                          separable, conv1d, conv1d_pad_relu6, zeropad2d_relu6, residual,
                                          nested_sequential)}


def bn_model():
    """Batch norm after a Conv2D, a bias-less DepthwiseConv2D, a SeparableConv2D and a
    Dense layer, each followed by a ReLU: every kind of folded unit."""
    inp = keras.Input((8, 8, 2))
    h = L.Conv2D(4, 3, padding="same", name="c1")(inp)
    h = L.BatchNormalization(name="bn1")(h)
    h = L.ReLU(name="r1")(h)
    h = L.DepthwiseConv2D(3, use_bias=False, name="dw")(h)
    h = L.BatchNormalization(name="bn2")(h)
    h = L.ReLU(name="r2")(h)
    h = L.SeparableConv2D(5, 3, padding="same", name="sep")(h)
    h = L.BatchNormalization(name="bn3")(h)
    h = L.ReLU(name="r3")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    h = L.Dense(6, name="d1")(h)
    h = L.BatchNormalization(name="bn4")(h)
    h = L.ReLU(name="r4")(h)
    return keras.Model(inp, L.Dense(3, activation="softmax", name="out")(h))
