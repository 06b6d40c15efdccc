"""TinyPropV2(budget=b): the online gate rule of docs/algorithm.md ("Compute budget").

- Over an epoch the achieved backward-MAC fraction is within ±10% of b, on an MLP and on
  the papers' 2-D CNN (b set to half of what the model spends with the gate open, so it
  is reachable: the gate can only lower TinyProp's own effort).
- The C++ and the reference take the same decisions with the same float32 tau.
"""

import numpy as np
import pytest

import tflm_train
from tflm_train.reference import ReferenceTrainer

import cnn_models as C
import helpers as H
from test_reference_parity import twins


def _mlp_case():
    model, x, y = H.build_parity_mlp("mlp_b", "sparse_categorical_crossentropy", seed=2)
    x, labels, _ = H.class_data((64,), 10, 2000, seed=2)
    return model, x, labels


def _cnn_case():
    import keras

    keras.utils.set_random_seed(3)
    model = C.paper_cnn_2d()
    x, labels, _ = H.class_data((28, 28, 1), 10, 1000, seed=3)
    return model, x, labels


@pytest.mark.parametrize("case", [_mlp_case, _cnn_case], ids=["mlp", "paper_cnn_2d"])
def test_budget_met_over_an_epoch(case):
    model, x, y = case()
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.01))

    def epochs(policy):
        micro = tflm_train.MicroTrainer(model_bytes, policy=policy)
        return micro, micro.fit(x, y, epochs=2, batch_size=1, verbose=0).history["backward_macs"]

    _, full = epochs(tflm_train.Full())
    _, open_gate = epochs(tflm_train.TinyPropV2(tau=-1.0))          # D >= 0 > tau: every sample trains
    budget = 0.5 * open_gate[0] / full[0]
    micro, spent = epochs(tflm_train.TinyPropV2(budget=budget))
    fractions = [s / f for s, f in zip(spent, full)]
    for fraction in fractions:
        assert abs(fraction - budget) <= 0.1 * budget, (fractions, budget)
    assert micro.gate_tau != 0.5  # the threshold did move


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_budget_parity(loss):
    """200 single-sample steps: same skips, k and MACs step by step (run_parity), and the
    same float32 tau and moving average after every step."""
    model, x, y = H.build_parity_mlp("mlp_a", loss, seed=4)
    policy = tflm_train.TinyPropV2(budget=0.2, budget_gain=0.2)
    micro, ref = twins(model, loss, tflm_train.SGD(0.01), policy)
    taus = []
    for i in range(4):
        run_parity_chunk = slice(50 * i, 50 * i + 50)
        for j in range(run_parity_chunk.start, run_parity_chunk.stop):
            a = micro.train_step(x[j:j + 1], y[j:j + 1])
            b = ref.train_step(x[j:j + 1], y[j:j + 1])
            assert a.skipped == b.skipped and list(a.k) == list(b.k), j
            assert (a.forward_macs, a.backward_macs) == (b.forward_macs, b.backward_macs), j
            assert np.float32(micro.gate_tau) == ref.gate_tau, j
            assert np.float32(micro.budget_spent) == ref.budget_spent, j
            taus.append(float(ref.gate_tau))
    assert len(set(taus)) > 10 and micro.counters["skipped"] > 0
