"""Effort accounting of the reference trainer (tflm_train.reference.ReferenceTrainer)
on small CNNs: forward and backward MAC counts written out by hand (docs/algorithm.md
and the reference's docstring give the rules; the C++ must count the same): full
backprop, frozen layers before, between and after the trainable ones, skipped samples,
separable convolutions and Conv1D. (The MACs of a DAG: test_dag_both_branches in
tests/test_reference_cnn.py.)

MAC counts are integers: every check is exact.
"""

import keras
import pytest

import tflm_train
from tflm_train.reference import ReferenceTrainer

import helpers as H

L = keras.layers


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
    x, y = H.random_data(model, "sparse_categorical_crossentropy", 1, seed=seed)
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
