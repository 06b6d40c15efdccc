"""The reference trainer (tflm_train.reference.ReferenceTrainer) on CNNs and DAGs,
checked against computations made independently of it.

- Full backprop, batch 1: one train_step equals plain TensorFlow, the tests' step
  oracle helpers.KerasReference: a GradientTape over the whole Keras model
  (`model(x, training=False)`, Keras' loss object) and keras.optimizers.SGD, for CNN
  configurations covering every supported layer (cnn_models.REFERENCE_CNNS).
- Batch norm: the folded units train like an equivalent model built without batch
  norm from the folded weights.
- Sparse top-k on a convolution: the kernel gradient from an output gradient masked
  by hand (tf.nn.conv2d and a tape on the single layer), k = round(r * H * W * C).
- DAG: a residual block with trainable layers on both branches.
(Effort accounting, MAC counts by hand: tests/test_reference_macs.py. The weights API
and what the reference refuses: tests/test_reference_weights.py.)

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
from tflm_train.reference import ReferenceTrainer

import cnn_models as C
import helpers as H

CHANGE_RTOL = 1e-5
LR = 0.1
L = keras.layers


# --- helpers -----------------------------------------------------------------------------

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

@pytest.mark.parametrize("loss", ["mse", "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("config", sorted(C.REFERENCE_CNNS))
def test_full_step_equals_whole_model_gradient(config, loss):
    keras.utils.set_random_seed(1)
    model = C.REFERENCE_CNNS[config]("softmax" if loss != "mse" else "linear")
    C.randomize(model, 0)
    x, y = H.random_data(model, loss, 1, seed=0)
    other = H.clone(model)
    before = keras_variables(model)
    ref = ReferenceTrainer(model, loss=loss, optimizer=tflm_train.SGD(LR), policy=tflm_train.Full())
    r = ref.train_step(x, y)
    want_loss = H.KerasReference(other, tflm_train.SGD(LR), loss).step(x, y)
    np.testing.assert_allclose(r.loss, want_loss, rtol=1e-6)
    after, want = keras_variables(model), keras_variables(other)
    before, after = same_variables(before, want), same_variables(after, want)
    for path in before:
        assert_change_close(before[path], after[path], before[path], want[path], path)
    assert r.k == [u.n_out for u in ref._layers]          # Full keeps every element of each output map
    np.testing.assert_allclose(ref.predict(x), other(x, training=False).numpy(), rtol=1e-6, atol=1e-6)


# --- 2. batch norm folded -----------------------------------------------------------------------

def bn_free_model():
    """cnn_models.bn_model without batch norm; every folded layer gets a bias."""
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
    model = C.bn_model()
    C.randomize(model, 0)
    loss = "sparse_categorical_crossentropy"
    x, y = H.random_data(model, loss, 1, seed=0)
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
    H.KerasReference(plain, tflm_train.SGD(LR), loss).step(x, y)
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
    x, y = H.random_data(model, "sparse_categorical_crossentropy", 1, seed=3)
    want, k, kept = independent_sparse_step(model, x, y, 0.3, train_out)
    assert k == round(0.3 * 6 * 6 * 4) == 43
    before = {n: model.get_layer(n).get_weights() for n in ("c", "out")}
    ref = ReferenceTrainer(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(LR),
                           policy=tflm_train.StaticTopK(0.3, dense_output=False),
                           trainable=["c", "out"] if train_out else ["c"])
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
    x, y = H.random_data(model, loss, 1, seed=6)
    other = H.clone(model)
    before = keras_variables(model)
    ref = ReferenceTrainer(model, loss=loss, optimizer=tflm_train.SGD(LR), policy=tflm_train.Full(),
                           trainable=trainable)
    r = ref.train_step(x, y)
    names = ref.trainable_layers
    variables = [v for layer in other.layers if layer.name in names for v in layer.trainable_variables]
    H.KerasReference(other, tflm_train.SGD(LR), loss, variables).step(x, y)
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
    x, y = H.random_data(model, "sparse_categorical_crossentropy", 1, seed=7)
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
