"""The policies' arithmetic, in the C++ trainer (MicroTrainer) and in the reference
trainer (tflm_train.reference.ReferenceTrainer): the identities that make StaticTopK(1.0)
and TinyProp(s_min=1, s_max=1, zeta=1) the same as Full() bit for bit; TinyPropV2's
gate in the C++ checked from the outside (the float32 gate on Y_L and Ymax_L, a
skipped sample does no backward work and changes nothing); and the reference's own
float32 rounding, clamping, sums and top-k tie rule. (Step-by-step parity of the two
trainers: tests/test_reference_parity.py.)

Identities are bit for bit; the gate's decisions, Ymax and the counters are exact
(float32 arithmetic evaluated as the C++ does it).
"""

import numpy as np
import pytest

import tflm_train
from tflm_train import reference
from tflm_train.reference import ReferenceTrainer

import helpers as H

LOSSES = ("sparse_categorical_crossentropy", "mse")
STEPS = 200


# --- C++ identities -----------------------------------------------------------------------------

def _train_bytes(model_bytes, policy, x, y, steps):
    micro = tflm_train.MicroTrainer(model_bytes, policy=policy)
    for i in range(steps):
        micro.train_step(x[i % len(x):i % len(x) + 1], y[i % len(x):i % len(x) + 1])
    return micro


@pytest.mark.parametrize("loss", LOSSES)
def test_cpp_full_identities(loss):
    """StaticTopK(1.0) and TinyProp(s_min=1, s_max=1, zeta=1) are Full() bit for bit."""
    model, x, y = H.build_parity_mlp("mlp_a", loss, seed=8)
    model_bytes = tflm_train.convert(model, loss=loss, optimizer=tflm_train.SGD(0.05, momentum=0.5))
    full = _train_bytes(model_bytes, tflm_train.Full(), x, y, 150)
    for policy in (tflm_train.StaticTopK(1.0), tflm_train.TinyProp(s_min=1.0, s_max=1.0, zeta=1.0)):
        other = _train_bytes(model_bytes, policy, x, y, 150)
        assert other.model_bytes == full.model_bytes, policy
        assert other.counters == full.counters, policy
    assert full.model_bytes != model_bytes  # it did train


def test_reference_full_identities():
    """The same identities hold in the reference (bit for bit: same TensorFlow ops)."""
    model, x, y = H.build_parity_mlp("mlp_c", "sparse_categorical_crossentropy", seed=9)
    weights = None
    for policy in (tflm_train.Full(), tflm_train.StaticTopK(1.0),
                   tflm_train.TinyProp(s_min=1.0, s_max=1.0, zeta=1.0)):
        clone = H.clone(model)
        ref = ReferenceTrainer(clone, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.05),
                               policy=policy)
        for i in range(60):
            ref.train_step(x[i:i + 1], y[i:i + 1])
        got = [w.copy() for w in clone.get_weights()]
        if weights is None:
            weights = got
        else:
            assert all(np.array_equal(a, b) for a, b in zip(weights, got)), policy


def test_cpp_gate_never_trains_a_rejected_sample():
    """TinyPropV2's gate in the C++, checked from the outside at batch size 1:
    Y_L of the softmax/cross-entropy output is sum|p - onehot| from the C++'s own
    forward pass (predict), Ymax_L is read before and after the step; the decision
    must be the float32 gate on them, a skipped step must do no backward work and
    leave the weights and the other layers' Ymax untouched, and the counters add up."""
    model, x, y = H.build_parity_mlp("mlp_a", "sparse_categorical_crossentropy", seed=10)
    policy = tflm_train.TinyPropV2()
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.05),
                                     policy=policy)
    micro = tflm_train.MicroTrainer(model_bytes)
    arithmetic = reference.PolicyArithmetic(policy)
    skipped = trained = 0
    for i in range(STEPS):
        xi, yi = x[i:i + 1], y[i:i + 1]
        p = micro.predict(xi)[0].astype(np.float32)
        error = p - np.eye(len(p), dtype=np.float32)[int(yi[0])]
        y_out = reference.total_error(error)
        ymax_before = [np.float32(v) for v in micro.ymax]
        weights_before = [w.tobytes() for w in micro.get_weights()]
        counters_before = dict(micro.counters)
        r = micro.train_step(xi, yi)
        ymax_after = [np.float32(v) for v in micro.ymax]
        assert ymax_after[-1] == arithmetic.update_ymax(y_out, ymax_before[-1]), i
        gate = arithmetic.gate_trains(y_out, ymax_after[-1])
        assert r.skipped == (not gate), f"step {i}: gate says train={gate}, C++ skipped={r.skipped}"
        c = micro.counters
        if r.skipped:
            skipped += 1
            assert r.trained == 0 and r.backward_macs == 0 and list(r.k) == [0, 0, 0]
            assert [w.tobytes() for w in micro.get_weights()] == weights_before, \
                f"step {i}: weights changed on a skipped sample"
            assert ymax_after[:-1] == ymax_before[:-1], f"step {i}: Ymax of hidden layers moved on a skip"
            assert c["skipped"] == counters_before["skipped"] + 1
            assert c["trained"] == counters_before["trained"]
            assert c["updates"] == counters_before["updates"]
            assert c["backward_macs"] == counters_before["backward_macs"]
        else:
            trained += 1
            assert r.trained == 1 and r.backward_macs > 0 and min(r.k) >= 1
            assert [w.tobytes() for w in micro.get_weights()] != weights_before
            assert c["trained"] == counters_before["trained"] + 1
            assert c["skipped"] == counters_before["skipped"]
    assert skipped > 0 and trained > 0
    assert micro.counters["skipped"] == skipped and micro.counters["trained"] == trained
    assert micro.counters["samples"] == STEPS and micro.counters["updates"] == trained


# --- the reference's own arithmetic -------------------------------------------------------------

def test_policy_arithmetic_float32():
    """roundf is half away from zero; k clamps to [1, n]; zeta^p is a float32 product."""
    assert reference.roundf(np.float32(2.5)) == 3.0 and reference.roundf(np.float32(0.5)) == 1.0
    assert reference.roundf(np.float32(0.49999997)) == 0.0 and reference.roundf(np.float32(-2.5)) == -3.0
    assert reference.clamp_k(np.float32(0.3), 4) == 1        # 1.2 -> 1
    assert reference.clamp_k(np.float32(0.3), 5) == 2        # 1.5 -> 2 (half away from zero)
    assert reference.clamp_k(np.float32(0.0), 7) == 1
    assert reference.clamp_k(np.float32(1.0), 7) == 7
    a = reference.PolicyArithmetic(tflm_train.TinyProp(s_min=0.1, s_max=0.9, zeta=0.5))
    assert a.kept(10, 0, 1.0, 1.0) == 9 and a.kept(10, 1, 1.0, 1.0) == 5 and a.kept(10, 0, 0.0, 0.0) == 1
    # Sequential float32 (not pairwise, not exact): each 1.0 is lost against 1e8.
    assert reference.total_error(np.array([1e8] + [1.0] * 100, np.float32)) == np.float32(1e8)
    mask = reference.top_k_mask(np.array([0.5, -2.0, 0.5, 0.5, 1.0], np.float32), 3)
    assert mask.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]        # ties: the lower index wins
