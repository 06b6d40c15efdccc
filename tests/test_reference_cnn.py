"""The reference trainer (tflm_train.reference.ReferenceTrainer) on CNNs and DAGs,
checked against computations made independently of it.

- Full backprop, batch 1: one train_step equals plain TensorFlow: a GradientTape
  over the whole Keras model (`model(x, training=False)`, Keras' loss object) and
  keras.optimizers.SGD, for CNN configurations covering every supported layer.
- Batch norm: the folded units train like an equivalent model built without batch
  norm from the folded weights.
- Sparse top-k on a convolution: the kernel gradient from an output gradient masked
  by hand (tf.nn.conv2d and a tape on the single layer), k = round(r * H * W * C).
- Effort accounting: MAC counts of small CNNs written out by hand (docs/algorithm.md and
  the reference's docstring give the rules; the C++ must count the same).
- DAG: a residual block with trainable layers on both branches.

Tolerance: CHANGE_RTOL = 1e-5 relative to the scale of each weight change: with the
weights before the step identical, |dw_ref - dw_want| <= 1e-5 * max|dw_want|
elementwise. Both sides run the same TensorFlow kernels, so what differs is only the
order in which float32 sums are taken (the reference sends errors back segment by
segment; observed differences ~1e-7 of the scale). An elementwise relative check
would be meaningless for changes that pass through ~0.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tflm_train
from tflm_train.reference import ReferenceTrainer, WeightDict, micro_weights

import cnn_models as C

CHANGE_RTOL = 1e-5
LR = 0.1
L = keras.layers


# --- models ---------------------------------------------------------------------------

def _head(h, classes, final):
    return L.Dense(classes, activation=final, name="out")(h)


def conv_valid_strided(final):
    """Conv2D valid stride 1, Conv2D same stride 2, MaxPooling2D valid."""
    inp = keras.Input((9, 9, 2))
    h = L.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = L.Conv2D(3, 3, strides=2, padding="same", activation="tanh", name="c2")(h)
    h = L.MaxPooling2D(2, name="pool")(h)
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


def conv_rect_same(final):
    """Rectangular kernel and strides, SAME padding; MaxPooling2D SAME with stride != size."""
    inp = keras.Input((9, 7, 3))
    h = L.Conv2D(4, (3, 2), strides=(2, 1), padding="same", activation="relu", name="c1")(inp)
    h = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(h)
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


def conv_dilated(final):
    """Dilated convolutions (SAME and VALID), AveragePooling2D VALID, GlobalAveragePooling2D."""
    inp = keras.Input((10, 10, 2))
    h = L.Conv2D(4, 3, dilation_rate=2, padding="same", activation="sigmoid", name="c1")(inp)
    h = L.Conv2D(3, 3, dilation_rate=(1, 2), name="c2")(h)
    h = L.AveragePooling2D(2, name="pool")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, _head(h, 4, final))


def depthwise_m1(final):
    """DepthwiseConv2D multiplier 1 SAME, a 1x1 Conv2D, AveragePooling2D SAME."""
    inp = keras.Input((8, 8, 3))
    h = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(inp)
    h = L.Conv2D(4, 1, name="pw")(h)
    h = L.AveragePooling2D(3, strides=2, padding="same", name="pool")(h)
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


def depthwise_m2(final):
    """DepthwiseConv2D multiplier 2, stride 2, VALID."""
    inp = keras.Input((9, 9, 2))
    h = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="tanh", name="dw")(inp)
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


def separable(final):
    """SeparableConv2D SAME with multiplier 2, then one strided VALID without bias."""
    inp = keras.Input((8, 8, 3))
    h = L.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu", name="s1")(inp)
    h = L.SeparableConv2D(4, 3, strides=2, use_bias=False, name="s2")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, _head(h, 4, final))


def conv1d(final):
    """Conv1D strided SAME and dilated VALID, 1-D pooling in both paddings, global average."""
    inp = keras.Input((16, 3))
    h = L.Conv1D(5, 3, strides=2, padding="same", activation="relu", name="k1")(inp)
    h = L.MaxPooling1D(2, padding="same", name="p1")(h)
    h = L.Conv1D(4, 2, dilation_rate=2, name="k2")(h)
    h = L.AveragePooling1D(2, padding="same", name="p2")(h)
    h = L.GlobalAveragePooling1D(name="gap")(h)
    return keras.Model(inp, _head(h, 4, final))


def conv1d_pad_relu6(final):
    """ZeroPadding1D, Conv1D with the relu6 activation, MaxPooling1D VALID, causal Conv1D."""
    inp = keras.Input((12, 2))
    h = L.ZeroPadding1D((2, 1), name="zp")(inp)
    h = L.Conv1D(4, 3, activation="relu6", name="k1")(h)
    h = L.MaxPooling1D(3, strides=2, name="p1")(h)
    h = L.Conv1D(3, 2, padding="causal", dilation_rate=2, name="k2")(h)
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


def zeropad2d_relu6(final):
    """ZeroPadding2D (asymmetric), a ReLU6 layer, AveragePooling2D SAME stride 1."""
    inp = keras.Input((6, 6, 2))
    h = L.ZeroPadding2D(((1, 2), (0, 1)), name="zp")(inp)
    h = L.Conv2D(4, 3, name="c1")(h)
    h = L.ReLU(max_value=6.0, name="relu6")(h)
    h = L.AveragePooling2D(2, strides=1, padding="same", name="pool")(h)
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


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
    return keras.Model(inp, _head(L.Flatten()(h), 4, final))


def nested_sequential(final):
    """A Sequential nested in a Sequential, Activation('relu6'), Dropout, Reshape, Softmax layer."""
    block = keras.Sequential([keras.Input((7, 7, 1)), L.Conv2D(3, 3, name="c1"), L.Activation("relu6", name="a1")],
                             name="block")
    layers = [keras.Input((7, 7, 1)), block, L.Reshape((75,), name="reshape"), L.Dropout(0.5, name="drop"),
              L.Dense(4, name="out")]
    if final == "softmax":
        layers.append(L.Softmax(name="softmax"))
    return keras.Sequential(layers)


CONFIGS = {f.__name__: f for f in (conv_valid_strided, conv_rect_same, conv_dilated, depthwise_m1, depthwise_m2,
                                   separable, conv1d, conv1d_pad_relu6, zeropad2d_relu6, residual,
                                   nested_sequential)}
KERAS_LOSS = {"sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
              "mse": keras.losses.MeanSquaredError}


# --- helpers -----------------------------------------------------------------------------

def sample(model, loss, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    classes = int(model.outputs[0].shape[-1])
    if loss == "mse":
        return x, rng.normal(size=(1, classes)).astype(np.float32)
    return x, rng.integers(0, classes, size=(1,)).astype(np.float32)


def twin(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def keras_step(model, x, y, loss, variables):
    """One step by the book: a GradientTape over the whole model and Keras' loss
    object, then keras.optimizers.SGD(LR)."""
    with tf.GradientTape() as tape:
        value = KERAS_LOSS[loss]()(y, model(x, training=False))
    grads = tape.gradient(value, variables)
    keras.optimizers.SGD(LR).apply(grads, variables)


def assert_change_close(got_before, got_after, want_before, want_after, what):
    np.testing.assert_array_equal(got_before, want_before, err_msg=f"{what}: different starting weights")
    got, want = np.asarray(got_after) - got_before, np.asarray(want_after) - want_before
    scale = float(np.max(np.abs(want)))
    assert scale > 0, f"{what}: no change at all"
    np.testing.assert_allclose(got, want, rtol=CHANGE_RTOL, atol=CHANGE_RTOL * scale,
                               err_msg=f"{what} (change scale {scale:.3g})")


def keras_variables(model):
    """{variable path: value} of a Keras model, keyed by position and path (a clone of a
    nested model has the same variables in the same order under other paths)."""
    return {f"{i}:{v.path}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}


def same_variables(a, b):
    """a's values with b's keys (the same model and its clone)."""
    assert len(a) == len(b)
    return dict(zip(b, a.values()))


# --- 1. Full, batch 1: the whole-model gradient ---------------------------------------------

@pytest.mark.parametrize("loss", sorted(KERAS_LOSS))
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_full_step_equals_whole_model_gradient(config, loss):
    keras.utils.set_random_seed(1)
    model = CONFIGS[config]("softmax" if loss != "mse" else "linear")
    C.randomize(model, 0)
    x, y = sample(model, loss)
    other = twin(model)
    before = keras_variables(model)
    ref = ReferenceTrainer(model, loss=loss, optimizer=tflm_train.SGD(LR), policy=tflm_train.Full())
    want_loss = float(KERAS_LOSS[loss]()(y, other(x, training=False)))
    r = ref.train_step(x, y)
    np.testing.assert_allclose(r.loss, want_loss, rtol=1e-6)
    keras_step(other, x, y, loss, other.trainable_variables)
    after, want = keras_variables(model), keras_variables(other)
    before, after = same_variables(before, want), same_variables(after, want)
    for path in before:
        assert_change_close(before[path], after[path], before[path], want[path], path)
    assert r.k == [u.n_out for u in ref._layers]          # Full keeps every element of each output map
    np.testing.assert_allclose(ref.predict(x), other(x, training=False).numpy(), rtol=1e-6, atol=1e-6)


# --- 2. batch norm folded -----------------------------------------------------------------------

def bn_model():
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


def bn_free_model():
    """bn_model without batch norm; every folded layer gets a bias."""
    inp = keras.Input((8, 8, 2))
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    h = L.DepthwiseConv2D(3, activation="relu", name="dw")(h)
    h = L.SeparableConv2D(5, 3, padding="same", activation="relu", name="sep")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    h = L.Dense(6, activation="relu", name="d1")(h)
    return keras.Model(inp, L.Dense(3, activation="softmax", name="out")(h))


def bn_free_weights(model, weights):
    """Loads reference weights (Keras layout) into bn_free_model."""
    for name in ("c1", "dw", "d1", "out"):
        model.get_layer(name).set_weights(list(weights[name]))
    dw, _ = weights["sep/depthwise"]
    pw, bias = weights["sep/pointwise"]
    model.get_layer("sep").set_weights([dw, pw, bias])


def test_batchnorm_folded_units_train_like_a_bn_free_model():
    keras.utils.set_random_seed(2)
    model = bn_model()
    C.randomize(model, 0)
    loss = "sparse_categorical_crossentropy"
    x, y = sample(model, loss)
    untouched = {name: [w.copy() for w in model.get_layer(name).get_weights()]
                 for name in ("c1", "bn1", "dw", "bn2", "sep", "bn3", "d1", "bn4")}
    ref = ReferenceTrainer(model, loss=loss, optimizer=tflm_train.SGD(LR))
    assert ref.weight_units == ["c1", "dw", "sep/depthwise", "sep/pointwise", "d1", "out"]
    folded = ref.get_weights()
    assert folded["dw"][1] is not None and folded["sep/depthwise"][1] is None
    plain = bn_free_model()
    bn_free_weights(plain, folded)
    # Folding is exact up to float32 rounding: the same function.
    want = model(x, training=False).numpy()
    np.testing.assert_allclose(ref.predict(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain(x, training=False).numpy(), want, rtol=1e-5, atol=1e-6)

    ref.train_step(x, y)
    keras_step(plain, x, y, loss, plain.trainable_variables)
    got = ref.get_weights()
    expected = {"c1": plain.get_layer("c1").get_weights(), "dw": plain.get_layer("dw").get_weights(),
                "sep/depthwise": [plain.get_layer("sep").get_weights()[0], None],
                "sep/pointwise": plain.get_layer("sep").get_weights()[1:],
                "d1": plain.get_layer("d1").get_weights(), "out": plain.get_layer("out").get_weights()}
    for name, (kernel, bias) in expected.items():
        assert_change_close(folded[name][0], got[name][0], folded[name][0], kernel, f"{name} kernel")
        if bias is not None:
            assert_change_close(folded[name][1], got[name][1], folded[name][1], bias, f"{name} bias")
    # Folded units train their own variables: their Keras layers and batch norms are
    # untouched. Unfolded units train in place: the output layer, and sep's depthwise half
    # (the batch norm after a SeparableConv2D folds into its pointwise half only).
    sep = untouched.pop("sep")
    for name, weights in untouched.items():
        for a, b in zip(weights, model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(model.get_layer("sep").pointwise_kernel.numpy(), sep[1])
    np.testing.assert_array_equal(model.get_layer("sep").bias.numpy(), sep[2])
    np.testing.assert_array_equal(model.get_layer("sep").depthwise_kernel.numpy(), got["sep/depthwise"][0])
    np.testing.assert_array_equal(model.get_layer("out").kernel.numpy(), got["out"][0])


# --- 3. sparse top-k on a convolution -----------------------------------------------------------

def sparse_model():
    inp = keras.Input((6, 6, 2))
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c")(inp)
    return keras.Model(inp, L.Dense(3, activation="softmax", name="out")(L.Flatten()(h)))


def top_mask(delta, k):
    """The k largest |delta|, ties to the lower flat index (written independently of
    reference.top_k_mask: a lexicographic sort on (-|delta|, index))."""
    flat = np.abs(delta.ravel())
    order = np.lexsort((np.arange(flat.size), -flat))
    mask = np.zeros(flat.size, np.float32)
    mask[order[:k]] = 1.0
    return mask.reshape(delta.shape), np.sort(order[:k])


def independent_sparse_step(model, x, label, ratio, train_out):
    """The expected update of conv 'c' (and Dense 'out' if train_out) with static top-k,
    written with tf.nn ops on copies of the weights."""
    kc, bc = (tf.Variable(w) for w in model.get_layer("c").get_weights())
    ko, bo = (tf.Variable(w) for w in model.get_layer("out").get_weights())
    with tf.GradientTape(persistent=True) as tape:
        z = tf.nn.conv2d(x, kc, strides=1, padding="SAME") + bc
        logits = tf.reshape(tf.nn.relu(z), [1, -1]) @ ko + bo
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=label.astype(np.int32), logits=logits)
    new = {}
    kept = {}
    if train_out:
        d_out = tape.gradient(loss, logits).numpy()
        k_out = max(1, int(np.floor(ratio * d_out.size + 0.5)))
        mask, kept["out"] = top_mask(d_out, k_out)
        new["out"] = (ko - LR * tape.gradient(logits, ko, output_gradients=d_out * mask),
                      bo - LR * d_out.sum(0))
        d_c = tape.gradient(logits, z, output_gradients=d_out * mask).numpy()
    else:
        d_c = tape.gradient(loss, z).numpy()
    k = int(np.floor(ratio * d_c.size + 0.5))
    mask, kept["c"] = top_mask(d_c, k)
    g_kernel = tape.gradient(z, kc, output_gradients=tf.constant(d_c * mask))
    new["c"] = (kc - LR * g_kernel, bc - LR * d_c.sum(axis=(0, 1, 2)))
    return {n: (a.numpy(), np.asarray(b)) for n, (a, b) in new.items()}, k, kept


@pytest.mark.parametrize("train_out", [False, True], ids=["conv_only", "conv_and_dense"])
def test_sparse_topk_conv_kernel_gradient(train_out):
    keras.utils.set_random_seed(3)
    model = sparse_model()
    C.randomize(model, 0)
    x, y = sample(model, "sparse_categorical_crossentropy", seed=3)
    want, k, kept = independent_sparse_step(model, x, y, 0.3, train_out)
    assert k == round(0.3 * 6 * 6 * 4) == 43
    before = {n: model.get_layer(n).get_weights() for n in ("c", "out")}
    ref = ReferenceTrainer(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(LR),
                           policy=tflm_train.StaticTopK(0.3), trainable=["c", "out"] if train_out else ["c"])
    r = ref.train_step(x, y)
    assert r.k == ([43, 1] if train_out else [43])
    np.testing.assert_array_equal(ref.last_selection[0][0], kept["c"])
    if train_out:
        np.testing.assert_array_equal(ref.last_selection[0][1], kept["out"])
    assert not ref.ambiguities
    for name, (kernel, bias) in want.items():
        got = model.get_layer(name).get_weights()
        assert_change_close(before[name][0], got[0], before[name][0], kernel, f"{name} kernel")
        assert_change_close(before[name][1], got[1], before[name][1], bias, f"{name} bias")
    if not train_out:
        np.testing.assert_array_equal(model.get_layer("out").get_weights()[0], before["out"][0])


# --- 4. MAC counts by hand ----------------------------------------------------------------------

def mac_model():
    """Input 6x6x1:
    c1  Conv2D(2, 3x3, valid)   -> 4x4x2: n_out 32, fan_in 9 = 3*3*1, forward 288
    dw  DepthwiseConv2D(3x3, same) -> 4x4x2: n_out 32, fan_in 9 = 3*3,   forward 288
    pw  Conv2D(3, 1x1)          -> 4x4x3: n_out 48, fan_in 2 = 1*1*2, forward 96
    MaxPooling2D(2) -> 2x2x3, Flatten -> 12
    d   Dense(4)                -> 4:     n_out 4,  fan_in 12,        forward 48
    forward per sample: 288 + 288 + 96 + 48 = 720."""
    inp = keras.Input((6, 6, 1))
    h = L.Conv2D(2, 3, activation="relu", name="c1")(inp)
    h = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(h)
    h = L.Conv2D(3, 1, activation="relu", name="pw")(h)
    h = L.Flatten()(L.MaxPooling2D(2)(h))
    return keras.Model(inp, L.Dense(4, activation="softmax", name="d")(h))


def _macs(model, policy, trainable, seed=4):
    keras.utils.set_random_seed(seed)
    x, y = sample(model, "sparse_categorical_crossentropy", seed=seed)
    ref = ReferenceTrainer(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.01),
                           policy=policy, trainable=trainable)
    r = ref.train_step(x, y)
    return r, ref


@pytest.mark.parametrize("case", ["full", "frozen_prefix", "frozen_middle", "skip_frozen_tail", "trained_frozen_tail",
                                  "skip_all_trainable"])
def test_macs_by_hand(case):
    keras.utils.set_random_seed(4)
    model = mac_model()
    if case == "full":
        r, _ = _macs(model, tflm_train.Full(), None)
        # c1 32*9 (first: weight gradient only) + dw 32*9*2 + pw 48*2*2 + d 4*12*2
        assert (r.forward_macs, r.backward_macs) == (720, 288 + 576 + 192 + 96) == (720, 1152)
    elif case == "frozen_prefix":
        r, ref = _macs(model, tflm_train.Full(), 2)
        assert ref.trainable_layers == ["pw", "d"]
        # c1, dw frozen before the first trainable layer: nothing; pw 48*2 (no input gradient); d 4*12*2
        assert (r.forward_macs, r.backward_macs) == (720, 96 + 96) == (720, 192)
    elif case == "frozen_middle":
        r, _ = _macs(model, tflm_train.Full(), ["c1", "d"])
        # c1 32*9; dw, pw frozen with inputs needing gradients: 32*9 and 48*2; d 4*12*2
        assert (r.forward_macs, r.backward_macs) == (720, 288 + 288 + 96 + 96) == (720, 768)
    elif case == "skip_frozen_tail":
        # tau = 1: D = alpha <= 1 is never > tau, every sample is skipped. pw and d are
        # frozen after the last trainable layer (dw): 48*2 + 4*12 are paid to reach dw's error.
        r, _ = _macs(model, tflm_train.TinyPropV2(tau=1.0), ["c1", "dw"])
        assert r.skipped and r.k == [0, 0]
        assert (r.forward_macs, r.backward_macs) == (720, 96 + 48) == (720, 144)
    elif case == "trained_frozen_tail":
        r, _ = _macs(model, tflm_train.TinyPropV2(tau=-1.0), ["c1", "dw"])   # D >= 0 > tau: trained
        k_c1, k_dw = r.k
        assert not r.skipped and 1 <= k_c1 <= 32 and 1 <= k_dw <= 32
        assert (r.forward_macs, r.backward_macs) == (720, k_c1 * 9 + k_dw * 9 * 2 + 96 + 48)
    else:
        r, _ = _macs(model, tflm_train.TinyPropV2(tau=1.0), None)
        assert r.skipped and (r.forward_macs, r.backward_macs) == (720, 0)
    assert r.selection_ops == 0


def test_macs_by_hand_separable_and_conv1d():
    keras.utils.set_random_seed(5)
    # Input 5x5x2. s/depthwise: 3x3 valid, multiplier 2 -> 3x3x4: n_out 36, fan_in 9, forward 324.
    # s/pointwise: 1x1 -> 3x3x3: n_out 27, fan_in 4, forward 108. GAP -> 3; d Dense(2): forward 6.
    inp = keras.Input((5, 5, 2))
    h = L.SeparableConv2D(3, 3, depth_multiplier=2, activation="relu", name="s")(inp)
    model = keras.Model(inp, L.Dense(2, activation="softmax", name="d")(L.GlobalAveragePooling2D()(h)))
    r, ref = _macs(model, tflm_train.Full(), None, seed=5)
    assert ref.trainable_layers == ["s/depthwise", "s/pointwise", "d"]
    # 36*9 (first) + 27*4*2 + 2*3*2
    assert (r.forward_macs, r.backward_macs) == (324 + 108 + 6, 324 + 216 + 12)
    r, ref = _macs(model, tflm_train.Full(), ["d"], seed=5)
    assert (r.forward_macs, r.backward_macs) == (438, 6)
    # Input 10x3. k1 Conv1D(4, 3, stride 2, same) -> 5x4: n_out 20, fan_in 9 (KH = 1), forward 180;
    # Flatten -> 20; d Dense(2): forward 40.
    inp = keras.Input((10, 3))
    h = L.Conv1D(4, 3, strides=2, padding="same", name="k1")(inp)
    model = keras.Model(inp, L.Dense(2, activation="softmax", name="d")(L.Flatten()(h)))
    r, _ = _macs(model, tflm_train.Full(), None, seed=5)
    assert (r.forward_macs, r.backward_macs) == (180 + 40, 180 + 80)


# --- 5. DAG: trainable layers on both branches ----------------------------------------------------

def dag_model():
    """Input 6x6x2 -> stem Conv2D(3, 3x3 same, relu) -> branch b1 Conv2D(3, 3x3 same, relu)
    -> b2 Conv2D(3, 3x3 same); skip proj Conv2D(3, 1x1) on stem's output; Add -> ReLU
    -> GAP -> out Dense(4). stem's error takes both paths."""
    inp = keras.Input((6, 6, 2))
    stem = L.Conv2D(3, 3, padding="same", activation="relu", name="stem")(inp)
    h = L.Conv2D(3, 3, padding="same", activation="relu", name="b1")(stem)
    h = L.Conv2D(3, 3, padding="same", name="b2")(h)
    skip = L.Conv2D(3, 1, name="proj")(stem)
    h = L.ReLU(name="relu")(L.Add(name="add")([h, skip]))
    return keras.Model(inp, L.Dense(4, activation="softmax", name="out")(L.GlobalAveragePooling2D()(h)))


@pytest.mark.parametrize("trainable", [None, ["stem", "b2", "out"], ["stem", "proj"]],
                         ids=["all", "b1_proj_frozen", "stem_proj"])
def test_dag_both_branches(trainable):
    keras.utils.set_random_seed(6)
    model = dag_model()
    C.randomize(model, 0)
    loss = "sparse_categorical_crossentropy"
    x, y = sample(model, loss, seed=6)
    other = twin(model)
    before = keras_variables(model)
    ref = ReferenceTrainer(model, loss=loss, optimizer=tflm_train.SGD(LR), policy=tflm_train.Full(),
                           trainable=trainable)
    r = ref.train_step(x, y)
    names = ref.trainable_layers
    variables = [v for layer in other.layers if layer.name in names for v in layer.trainable_variables]
    keras_step(other, x, y, loss, variables)
    after, want = keras_variables(model), keras_variables(other)
    moved = set()
    for path in before:
        layer = path.split(":")[1].split("/")[0]
        if layer in names:
            assert_change_close(before[path], after[path], before[path], want[path], path)
            moved.add(layer)
        else:
            np.testing.assert_array_equal(after[path], before[path], err_msg=path)
    assert moved == set(names)
    # n_out 108 = 6*6*3 for every convolution; fan_in stem 18, b1/b2 27, proj 3; out n_out 4, fan_in 3.
    assert r.forward_macs == 108 * 18 + 108 * 27 * 2 + 108 * 3 + 4 * 3 == 8112
    if trainable is None:       # stem first (no input gradient); b1, b2, proj, out: weight + input gradient
        assert r.backward_macs == 108 * 18 + 2 * 108 * 27 * 2 + 108 * 3 * 2 + 4 * 3 * 2 == 14280
    elif trainable == ["stem", "b2", "out"]:    # b1 and proj frozen, their inputs need gradients
        assert r.backward_macs == 108 * 18 + 108 * 27 + 108 * 27 * 2 + 108 * 3 + 4 * 3 * 2 == 11040
    else:                       # b1, b2, out frozen with inputs needing gradients; proj trained
        assert r.backward_macs == 108 * 18 + 108 * 27 * 2 + 108 * 3 * 2 + 4 * 3 == 8436


def test_dag_sparse_error_sums_both_paths():
    """With sparse selections, stem's error is the sum of both branches' kept errors sent
    back: b1's delta_hat through b1 and proj's delta_hat through proj (checked with tf.nn)."""
    keras.utils.set_random_seed(7)
    model = dag_model()
    C.randomize(model, 0)
    x, y = sample(model, "sparse_categorical_crossentropy", seed=7)
    ref = ReferenceTrainer(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.0),
                           policy=tflm_train.StaticTopK(0.3), trainable=["stem", "b1", "proj"])
    w = {n: [tf.constant(v) for v in model.get_layer(n).get_weights()] for n in ("stem", "b1", "b2", "proj", "out")}
    ref.train_step(x, y)
    sel = ref.last_selection[0]           # stem, b1, proj (execution order)
    with tf.GradientTape(persistent=True) as tape:
        z_stem = tf.nn.conv2d(x, w["stem"][0], 1, "SAME") + w["stem"][1]
        tape.watch(z_stem)
        a = tf.nn.relu(z_stem)
        z_b1 = tf.nn.conv2d(a, w["b1"][0], 1, "SAME") + w["b1"][1]
        z_b2 = tf.nn.conv2d(tf.nn.relu(z_b1), w["b2"][0], 1, "SAME") + w["b2"][1]
        z_proj = tf.nn.conv2d(a, w["proj"][0], 1, "VALID") + w["proj"][1]
        logits = tf.reduce_mean(tf.nn.relu(z_b2 + z_proj), axis=(1, 2)) @ w["out"][0] + w["out"][1]
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y.astype(np.int32), logits=logits)
    d_proj = tape.gradient(loss, z_proj).numpy()
    d_b1 = tape.gradient(loss, z_b1).numpy()
    m_proj, kept_proj = top_mask(d_proj, 32)
    m_b1, kept_b1 = top_mask(d_b1, 32)
    np.testing.assert_array_equal(sel[1], kept_b1)
    np.testing.assert_array_equal(sel[2], kept_proj)
    d_stem = (tape.gradient(z_b1, z_stem, output_gradients=tf.constant(d_b1 * m_b1))
              + tape.gradient(z_proj, z_stem, output_gradients=tf.constant(d_proj * m_proj))).numpy()
    _, kept_stem = top_mask(d_stem, 32)
    np.testing.assert_array_equal(sel[0], kept_stem)
    # The proof that both paths count: either one alone selects differently.
    alone = [top_mask(tape.gradient(z, z_stem, output_gradients=tf.constant(d * m)).numpy(), 32)[1]
             for z, d, m in ((z_b1, d_b1, m_b1), (z_proj, d_proj, m_proj))]
    assert all(not np.array_equal(s, kept_stem) for s in alone)


# --- weights API, rejections ------------------------------------------------------------------------

def test_weights_layouts_round_trip():
    keras.utils.set_random_seed(8)
    model = bn_model()
    C.randomize(model, 0)
    ref = ReferenceTrainer(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(LR))
    keras_w = ref.get_weights()
    tflite_w = ref.get_weights("tflite")
    micro_w = ref.get_weights("micro")
    assert keras_w.layout == "keras" and tflite_w.layout == "tflite" and micro_w.layout == "micro"
    assert tflite_w["c1"][0].shape == (4, 3, 3, 2)                # OHWI
    assert tflite_w["dw"][0].shape == (1, 3, 3, 4)
    assert tflite_w["sep/pointwise"][0].shape == (5, 1, 1, 4)
    assert tflite_w["d1"][0].shape == (6, 5) and micro_w["d1"][0].shape == (5, 6)
    assert micro_w["c1"][0].shape == (4, 3, 3, 2)
    for given in (tflite_w, micro_w, dict(tflite_w), dict(micro_w)):  # with and without the layout marker
        other = ReferenceTrainer(twin(model), loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(LR))
        scaled = {n: (k * 2.0, None if b is None else b + 1.0) for n, (k, b) in given.items()}
        if isinstance(given, WeightDict):
            scaled = WeightDict(scaled, layout=given.layout)
        other.set_weights(scaled)
        for name, (k, b) in other.get_weights().items():
            np.testing.assert_array_equal(k, keras_w[name][0] * 2.0, err_msg=name)
            if b is not None:
                np.testing.assert_array_equal(b, keras_w[name][1] + 1.0, err_msg=name)
    with pytest.raises(ValueError, match="no weight units"):
        ref.set_weights({"bn1": keras_w["c1"]})
    with pytest.raises(ValueError, match="shape"):
        ref.set_weights({"c1": (np.zeros((2, 2), np.float32), keras_w["c1"][1])})
    with pytest.raises(ValueError, match="layout"):
        ref.get_weights("nhwc")


def test_ambiguous_kernel_shape_needs_a_layout():
    """A 3x3 convolution from 3 to 3 channels has the same shape in both layouts."""
    inp = keras.Input((5, 5, 3))
    h = L.Conv2D(3, 3, name="c")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(L.Flatten()(h)))
    ref = ReferenceTrainer(model, loss="mse", optimizer=tflm_train.SGD(LR))
    tflite_w = ref.get_weights("tflite")
    with pytest.raises(ValueError, match="both its Keras and its TFLite shape"):
        ref.set_weights({"c": tflite_w["c"]})
    ref.set_weights({"c": tflite_w["c"]}, layout="tflite")
    ref.set_weights(tflite_w)
    np.testing.assert_array_equal(ref.get_weights()["c"][0], model.get_layer("c").kernel.numpy())


@pytest.mark.parametrize("case", ["unsupported", "shared", "bn_after_relu", "two_outputs", "leaky"])
def test_rejects_what_it_cannot_train(case):
    inp = keras.Input((6, 6, 2))
    if case == "unsupported":
        model = keras.Model(inp, L.Dense(2)(L.Flatten()(L.Conv2DTranspose(2, 3, name="up")(inp))))
        match = "Conv2DTranspose"
    elif case == "shared":
        conv = L.Conv2D(2, 3, padding="same", name="shared")
        model = keras.Model(inp, L.Dense(2)(L.Flatten()(conv(conv(inp)))))
        match = "more than once"
    elif case == "bn_after_relu":
        h = L.BatchNormalization(name="bn")(L.Conv2D(2, 3, activation="relu", name="c")(inp))
        model = keras.Model(inp, L.Dense(2)(L.Flatten()(h)))
        match = "cannot be folded"
    elif case == "two_outputs":
        h = L.Flatten()(inp)
        model = keras.Model(inp, [L.Dense(2, name="o1")(h), L.Dense(2, name="o2")(h)])
        match = "one output"
    else:
        model = keras.Model(inp, L.Dense(2)(L.Flatten()(L.LeakyReLU(name="leaky")(inp))))
        match = "leaky"
    with pytest.raises(ValueError, match=match):
        ReferenceTrainer(model, loss="mse", optimizer=tflm_train.SGD(LR))


def test_micro_weights_of_a_converted_cnn():
    """micro_weights reads convolution kernels in TFLite's layout and they load into the
    reference. Needs the converter and C++ trainer to handle convolutions."""
    keras.utils.set_random_seed(9)
    model = depthwise_m1("softmax")
    C.randomize(model, 0)
    try:
        model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                         optimizer=tflm_train.SGD(LR))
    except Exception as e:          # convolutions in the converter / C++ are work in progress elsewhere
        pytest.skip(f"tflm_train.convert cannot convert this CNN yet: {type(e).__name__}: {e}")
    ref = ReferenceTrainer(twin(model), loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(LR))
    got, want = micro_weights(model_bytes), ref.get_weights("micro")
    assert got.layout == "micro" and set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name][0], want[name][0], err_msg=name)
    ref.set_weights(got)
