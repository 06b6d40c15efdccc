"""keras.applications.MobileNetV2 (32x32x3, alpha 0.35, 10 classes, 53 weight layers),
with the last 5 weight layers trainable and with everything trainable: inference in
TFLM and in the trainer, TinyPropV2 and one full step against the reference trainer,
and no backward work in the frozen prefix. (The random CNNs and minimal repros that
other tests do not contain: tests/test_cnn_unseen.py.)

Oracle: Keras run one sample at a time (helpers.keras_predict; see
tests/test_cnn_unseen.py for why the oracle never batches) and the ReferenceTrainer
(the micro model trains the batch-norm-folded weights).

Tolerances (float32), as in test_cnn_training.py:
- Inference: rtol/atol 1e-5 (observed differences ~4e-8 over the 53 weight layers).
- One step: each weight within 1e-5 of its tensor's scale (max |w|); loss rtol 1e-5.
- Reference parity: k per layer, skip decisions and MACs identical; weights within
  1e-5 of each tensor's scale after every step; loss rtol 1e-4. Where the reference
  flags a float32 near-tie, the step may differ and the reference takes over the C++'s
  weights and Ymax (run_parity's rule); as for the random CNNs, up to half of the steps
  may be resynchronised (a global average pooling sends equal shares back, which makes
  such ties structural); unflagged differences fail at once.
"""

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.reference import ReferenceTrainer, micro_weights

import cnn_models as C
import helpers as H

INFER_TOL = 1e-5
LOSS_RTOL = 1e-5
LR = 0.05
RESYNC_SHARE = 0.5  # up to half the steps may be resynchronised near-ties (see above)


MOBILENET_LAST5 = ["block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1", "predictions"]
SCCE = "sparse_categorical_crossentropy"


@pytest.fixture(scope="module")
def mobilenet():
    """MobileNetV2(32x32x3, alpha 0.35, 10 classes), random batch-norm statistics, and its
    trainable files: {5: last five weight layers, None: everything}."""
    keras.utils.set_random_seed(21)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    C.randomize(model, 22)
    sgd = tflm_train.SGD(LR)
    return model, {t: tflm_train.convert(model, loss=SCCE, optimizer=sgd, trainable=t) for t in (5, None)}


def _fan_in(op):
    if op.kind == "FULLY_CONNECTED":
        return op.weight_shape[1]
    if op.kind == "DEPTHWISE_CONV_2D":
        return op.weight_shape[1] * op.weight_shape[2]
    return op.weight_shape[1] * op.weight_shape[2] * op.weight_shape[3]


@pytest.mark.parametrize("trainable", [5, None], ids=["last5", "all"])
def test_mobilenet_v2_infers_like_keras(mobilenet, trainable):
    model, converted = mobilenet
    b = converted[trainable]
    info = tflm_train.read_model_info(b)
    assert len([op for op in info.ops if op.weight_shape is not None]) == 53
    names = [op.name for op in info.trainable_layers]
    assert names == (MOBILENET_LAST5 if trainable == 5 else [op.name for op in info.ops if op.weight_shape])
    x, _ = H.random_data(model, SCCE, 3, seed=23)
    want = H.keras_predict(model, x)
    np.testing.assert_allclose(H.tflm_predict(b, x), want, rtol=INFER_TOL, atol=INFER_TOL)
    np.testing.assert_allclose(tflm_train.MicroTrainer(b).predict(x), want, rtol=INFER_TOL, atol=INFER_TOL)


@pytest.mark.parametrize("trainable", [5, None], ids=["last5", "all"])
def test_mobilenet_v2_tinypropv2_matches_reference(mobilenet, trainable):
    model, converted = mobilenet
    policy = tflm_train.TinyPropV2()
    micro = tflm_train.MicroTrainer(converted[trainable], policy=policy)
    ref = ReferenceTrainer(H.clone(model), loss=SCCE, optimizer=tflm_train.SGD(LR), policy=policy, trainable=trainable)
    x, y = H.random_data(model, SCCE, 4, seed=24)
    H.run_parity(micro, ref, x, y, steps=4, max_resync_share=RESYNC_SHARE)
    for key in ("samples", "forward_macs"):
        assert micro.counters[key] == ref.counters[key], key


def test_mobilenet_v2_full_step_matches_reference(mobilenet):
    """Everything trainable, full backprop, batch 2: one step against the reference."""
    model, converted = mobilenet
    micro = tflm_train.MicroTrainer(converted[None], batch_size=2)
    ref = ReferenceTrainer(H.clone(model), loss=SCCE, optimizer=tflm_train.SGD(LR), policy=tflm_train.Full())
    x, y = H.random_data(model, SCCE, 2, seed=25)
    a, b = micro.train_step(x, y), ref.train_step(x, y)
    assert a.loss == pytest.approx(b.loss, rel=LOSS_RTOL)
    assert (a.forward_macs, a.backward_macs) == (b.forward_macs, b.backward_macs)
    H.assert_close_to_scale(micro_weights(micro.model_bytes), ref.get_weights(layout="micro"))


@pytest.mark.parametrize("policy", ["full", "tinypropv2"])
def test_mobilenet_v2_frozen_prefix_does_no_backward_work(mobilenet, policy):
    """Last 5 weight layers trainable: backward MACs are exactly the trainable layers'
    (k * fan_in for the weight gradient, again for the input gradient except the first
    trainable layer), as the reference counts them; the 48 frozen layers do not move."""
    model, converted = mobilenet
    policy = tflm_train.Full() if policy == "full" else tflm_train.TinyPropV2()
    micro = tflm_train.MicroTrainer(converted[5], policy=policy)
    ref = ReferenceTrainer(H.clone(model), loss=SCCE, optimizer=tflm_train.SGD(LR), policy=policy, trainable=5)
    trainable = micro.info.trainable_layers
    fan_in = [_fan_in(op) for op in trainable]
    n_out = [int(np.prod(op.output_shape)) for op in trainable]
    before = H.weights_from_bytes(micro.model_bytes)
    x, y = H.random_data(model, SCCE, 3, seed=26)
    for i in range(3):
        a = micro.train_step(x[i:i + 1], y[i:i + 1])
        b = ref.train_step(x[i:i + 1], y[i:i + 1])
        k = np.asarray(a.sample_k)[0]
        if isinstance(policy, tflm_train.Full):
            assert k.tolist() == n_out
        want = 0 if a.skipped else sum(int(k[l]) * fan_in[l] * (1 if l == 0 else 2) for l in range(len(k)))
        assert a.backward_macs == want, f"step {i}: k {k.tolist()}"
        assert (a.backward_macs, a.forward_macs) == (b.backward_macs, b.forward_macs), f"step {i}"
    after = H.weights_from_bytes(micro.model_bytes)
    moved = {name for name in before if not np.array_equal(before[name][0], after[name][0])}
    assert moved <= set(MOBILENET_LAST5) and moved, moved
