"""Parity of the C++ trainer (MicroTrainer) with the Keras/TensorFlow reference
trainer (tflm_train.reference.ReferenceTrainer), sample by sample.

What must be identical: per-sample k per trainable layer, per-sample skip decisions,
forward/backward MAC counts, trained/skipped counters, and (plain SGD at batch size
1, where it is observable as the rows of W that moved) the selected rows. What may
differ by float32 rounding: weights, losses, Ymax, predictions (TensorFlow and the
C++ sum in different orders). Tolerances, stated once:

- WEIGHT_RTOL = 1e-5, relative to each tensor's scale: |w_c - w_r| <= 1e-5 * max|w_r|
  elementwise, after all steps; the same for the model's predictions on the data. A
  plain elementwise relative check would be meaningless for weights that pass through
  ~0, where a 1-ulp difference in an update is a large relative error of a tiny
  number; the scale of a weight tensor is what rounding errors are relative to
  (observed: 1e-7 to 1e-6 after 200 steps).
- VALUE_RTOL = 1e-5, with VALUE_ATOL = 1e-6 for losses (a well-classified sample's
  loss is ~0), and for Ymax. Losses on identical weights are checked at this
  tolerance at the end of every run (the C++ weights loaded into the reference).
- STEP_LOSS_RTOL = 1e-4 for the per-step losses along a run, the project's
  per-step-loss tolerance (issue 2): after ~200 steps, momentum compounds the
  weights' rounding drift into the losses (measured: 1.3e-5 at step 197 of the
  batch-4 momentum run, while the same step's losses on identical weights agree
  to 1.4e-6).
- The learning rate: rtol 1e-6 (float32 evaluation of the same formula).

A selection that float32 rounding decides (a near-tie of |delta| at the k-th place,
flagged by the reference from its own errors) is the one accepted difference: see
run_parity and test_parity_through_a_near_tie.

test_cpp_cross_entropy_loss_accurate_for_confident_samples pins the (fixed) accuracy of
the reported cross-entropy loss of a confident sample. (The policies' identities, the
C++'s TinyPropV2 gate and the reference's float32 arithmetic: tests/test_policy_arithmetic.py.)
"""

import keras
import numpy as np
import pytest

import tflm_train
from tflm_train.reference import ReferenceTrainer, micro_weights

import helpers as H

WEIGHT_RTOL = 1e-5
VALUE_RTOL = 1e-5
VALUE_ATOL = 1e-6
STEP_LOSS_RTOL = 1e-4
LR_RTOL = 1e-6
STEPS = 200


# --- losses and policies (the models: helpers.PARITY_MLPS) ------------------------------

LOSSES = ("sparse_categorical_crossentropy", "mse")
POLICIES = {
    "Full": tflm_train.Full(),
    "StaticTopK(0.3)": tflm_train.StaticTopK(0.3),                      # dense_output=True
    "StaticTopK(0.3) sparse output": tflm_train.StaticTopK(0.3, dense_output=False),
    "TinyProp": tflm_train.TinyProp(),
    "TinyPropV2": tflm_train.TinyPropV2(),
    "TinyPropV2 sparse output": tflm_train.TinyPropV2(dense_output=False),
}


def twins(model, loss, sgd, policy, trainable=None, batch_size=1):
    """The C++ trainer on the converted model and the reference on an identical clone."""
    model_bytes = tflm_train.convert(model, loss=loss, optimizer=sgd, policy=policy, trainable=trainable,
                                     batch_size=batch_size)
    micro = tflm_train.MicroTrainer(model_bytes)
    ref = ReferenceTrainer(H.clone(model), loss=loss, optimizer=sgd, policy=policy, trainable=trainable)
    return micro, ref


# --- checks ---------------------------------------------------------------------------

def assert_weights_close(micro, ref, rtol=WEIGHT_RTOL):
    got, want = micro_weights(micro.model_bytes), ref.get_weights()
    assert set(got) == set(want)
    for name, (w_r, b_r) in want.items():
        w_c, b_c = got[name]
        for what, c, r in (("kernel", w_c, w_r), ("bias", b_c, b_r)):
            if r is None:
                assert c is None
                continue
            scale = float(np.max(np.abs(r)))
            np.testing.assert_allclose(c, r, rtol=rtol, atol=rtol * scale,
                                       err_msg=f"{name} {what} (scale {scale:.3g})")


def step_mismatch(i, a, b, micro, ref, from_layer=0):
    """How two StepResults differ in what must be identical, or None. With
    from_layer > 0 (a legit selection tie flipped at that trainable layer, see
    run_parity) the layers below it and the backward MACs are not compared."""
    problems = []
    ka, kb = np.asarray(a.sample_k), np.asarray(b.sample_k)
    if not np.array_equal(ka[:, from_layer:], kb[:, from_layer:]):
        problems.append(f"k: C++ {ka.tolist()} reference {kb.tolist()}")
    if not np.array_equal(np.asarray(a.sample_skipped), np.asarray(b.sample_skipped)):
        problems.append(f"skipped: C++ {np.asarray(a.sample_skipped).tolist()} "
                        f"reference {np.asarray(b.sample_skipped).tolist()}")
    fields = ("skipped", "trained", "samples", "forward_macs") + (("backward_macs",) if from_layer == 0 else ())
    for field in fields:
        if getattr(a, field) != getattr(b, field):
            problems.append(f"{field}: C++ {getattr(a, field)} reference {getattr(b, field)}")
    if not problems:
        return None
    flagged = [amb for amb in ref.ambiguities if amb["step"] == i]
    return (f"step {i}: " + "; ".join(problems) +
            f" (Ymax after: C++ {micro.ymax} reference {ref.ymax}; reference near-ties this step: {flagged})")


def run_parity(micro, ref, x, y, steps=STEPS, batch_size=1):
    """Trains both sample by sample on the same data and checks every step.

    With plain SGD at batch size 1 the C++'s selection is observable: exactly the
    kept rows of W[out, in] move. Every step then also checks that the rows the C++
    moved are among the rows the reference kept. Where they are not, the step must
    be one where the reference's own errors had the k-th and (k+1)-th largest |delta|
    within 1e-5 * max|delta| of each other (a float32 near-tie that rounding decides,
    see ReferenceTrainer.ambiguities); the reference then takes over the C++'s weights
    and Ymax, the step is recorded in the returned `resyncs`, and the layers below the
    flipped one are not compared on that step. Any other difference fails.
    """
    observe = batch_size == 1 and ref.sgd.momentum == 0 and ref.sgd.weight_decay == 0
    names = ref.trainable_layers
    n = len(x)
    results, resyncs, loss_problems = [], [], []
    before = micro_weights(micro.model_bytes) if observe else None
    for i in range(steps):
        index = (np.arange(batch_size) + i * batch_size) % n
        a = micro.train_step(x[index], y[index])
        b = ref.train_step(x[index], y[index])
        from_layer = 0
        if observe:
            after = micro_weights(micro.model_bytes)
            flipped = []
            if not a.skipped and not b.skipped:
                for l, name in enumerate(names):
                    moved = set(np.flatnonzero(np.any(after[name][0] != before[name][0], axis=0)).tolist())
                    kept = set(ref.last_selection[0][l].tolist())
                    if not moved <= kept:
                        flipped.append((l, name, sorted(moved - kept), sorted(kept)))
            if flipped:
                l, name, extra, kept = max(flipped)
                ties = [amb for amb in ref.ambiguities
                        if amb["step"] == i and amb["layer"] == name and amb["kind"] == "selection_tie"]
                assert ties, (f"step {i}: the C++ moved rows {extra} of layer {name} that the reference did not "
                              f"keep (reference kept {kept}), and the reference saw no near-tie there")
                resyncs.append(dict(ties[0], cpp_only_rows=extra, reference_rows=kept))
                ref.set_weights(after)
                ref.ymax = micro.ymax
                from_layer = l
            before = after
        problem = step_mismatch(i, a, b, micro, ref, from_layer)
        assert problem is None, problem
        np.testing.assert_allclose(a.learning_rate, b.learning_rate, rtol=LR_RTOL, err_msg=f"step {i} lr")
        if not np.allclose(a.sample_loss, b.sample_loss, rtol=STEP_LOSS_RTOL, atol=VALUE_ATOL):
            loss_problems.append((i, np.asarray(a.sample_loss).tolist(), np.asarray(b.sample_loss).tolist()))
        assert a.correct == b.correct, f"step {i}: correct C++ {a.correct} reference {b.correct}"
        results.append((a, b))
    for key in ("steps", "updates", "samples", "trained", "skipped", "forward_macs"):
        assert micro.counters[key] == ref.counters[key], key
    if not resyncs:
        assert micro.counters["backward_macs"] == ref.counters["backward_macs"]
    np.testing.assert_allclose(micro.ymax, ref.ymax, rtol=VALUE_RTOL)
    assert_weights_close(micro, ref)
    want = ref.predict(x)
    np.testing.assert_allclose(micro.predict(x), want, rtol=WEIGHT_RTOL, atol=WEIGHT_RTOL * float(np.max(np.abs(want))),
                               err_msg="predictions")
    assert len(resyncs) <= steps // 20, f"{len(resyncs)} selection ties flipped in {steps} steps: {resyncs}"
    # Checked last, so that a loss difference does not hide the checks above (see
    # test_cpp_cross_entropy_loss_accurate_for_confident_samples for the known case).
    assert not loss_problems, (f"{len(loss_problems)} steps with sample losses beyond rtol {STEP_LOSS_RTOL}, atol "
                               f"{VALUE_ATOL} (step, C++, reference), first: {loss_problems[:3]}")
    # On identical weights the two losses must agree tightly: the C++ weights go into the reference.
    probe_x, probe_y = x[:32], y[:32]
    micro_losses, _ = micro._core.evaluate(micro._x(probe_x), micro._y(probe_y, len(probe_x)))
    ref.set_weights(micro_weights(micro.model_bytes))
    ref_losses = [ref.evaluate(probe_x[i:i + 1], probe_y[i:i + 1], return_dict=True)["loss"] for i in range(len(probe_x))]
    np.testing.assert_allclose(micro_losses, ref_losses, rtol=VALUE_RTOL, atol=VALUE_ATOL,
                               err_msg="losses on identical weights")
    return results, resyncs


def expected_macs(sizes, k, trained, trainable=None):
    """docs/algorithm.md's effort accounting for an MLP, by hand: sizes [n_0, ..., n_L],
    k per trainable layer, `trainable` the indices of trainable Dense layers."""
    layers = len(sizes) - 1
    trainable = list(range(layers)) if trainable is None else trainable
    forward = sum(sizes[i] * sizes[i + 1] for i in range(layers))
    backward = 0
    if trained:
        first = trainable[0]
        for i in range(first, layers):
            if i in trainable:
                kk = k[trainable.index(i)]
                backward += kk * sizes[i] * (1 if i == first else 2)
            else:
                backward += sizes[i] * sizes[i + 1]
    return forward, backward


# --- parity: every policy, three MLPs, two losses ------------------------------------------

@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model_name", sorted(H.PARITY_MLPS))
@pytest.mark.parametrize("policy_name", list(POLICIES))
def test_parity_batch1(policy_name, model_name, loss):
    """Every policy on three MLPs and two losses, 200 single-sample steps. The rate
    0.01 keeps all 24 runs well conditioned (at 0.05, StaticTopK(0.3) on mlp_a's
    4-way softmax, k=1 there, drives the logits up without bound: see
    test_parity_through_a_near_tie)."""
    policy = POLICIES[policy_name]
    model, x, y = H.build_parity_mlp(model_name, loss)
    micro, ref = twins(model, loss, tflm_train.SGD(0.01), policy)
    results, resyncs = run_parity(micro, ref, x, y)
    if resyncs:
        print(f"selection ties decided differently by float32 rounding: {resyncs}")
    ks = np.concatenate([np.asarray(a.sample_k) for a, _ in results])
    widths = [op.output_shape[-1] for op in micro.info.trainable_layers]
    trained = ks[ks[:, -1] > 0]
    if policy_name == "Full":
        assert np.all(trained == widths)
    # dense_output: the softmax cross-entropy's layer keeps every error; under MSE it
    # does not feed a softmax cross-entropy and keeps the policy's k.
    dense_head = policy.dense_output if policy_name != "Full" else True
    exempt = dense_head and loss == "sparse_categorical_crossentropy"
    if policy_name.startswith("StaticTopK(0.3)"):
        want = [max(1, min(n, int(np.floor(0.3 * n + 0.5)))) for n in widths]
        if exempt:
            want[-1] = widths[-1]
        assert np.all(trained == want)
    if policy_name.startswith("TinyProp"):
        # The policy is actually adaptive here: k varies over the run in some layer.
        assert any(len(np.unique(trained[:, l])) > 1 for l in range(trained.shape[1]))
        if exempt:
            assert np.all(trained[:, -1] == widths[-1])
    if policy_name.startswith("TinyPropV2"):
        assert micro.counters["skipped"] < STEPS, micro.counters
        if loss == "mse" and model_name != "mlp_c":  # the runs where the gate rejects samples early
            assert micro.counters["skipped"] > 0, micro.counters


def test_macs_by_hand():
    """The MAC counts both trainers agree on are docs/algorithm.md's formula."""
    model, x, y = H.build_parity_mlp("mlp_a", "sparse_categorical_crossentropy")
    micro, ref = twins(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.05), tflm_train.TinyPropV2())
    for i in range(40):
        a = micro.train_step(x[i:i + 1], y[i:i + 1])
        b = ref.train_step(x[i:i + 1], y[i:i + 1])
        fwd, bwd = expected_macs([20, 16, 8, 4], list(np.asarray(a.sample_k)[0]), not a.skipped)
        assert (a.forward_macs, a.backward_macs) == (fwd, bwd)
        assert (b.forward_macs, b.backward_macs) == (fwd, bwd)


# --- batches, optimizer, frozen layers --------------------------------------------------------

def test_parity_batch4_tinypropv2_momentum_cosine():
    """Batch 4: sums over trained samples / trained, momentum, weight decay, cosine
    schedule with warm-up advancing on every batch (including all-skipped ones)."""
    sgd = tflm_train.SGD(0.01, momentum=0.9, weight_decay=1e-3,
                         schedule=tflm_train.CosineDecay(150, alpha=0.1, warmup_steps=10, warmup_initial=0.001))
    model, x, y = H.build_parity_mlp("mlp_b", "mse", seed=3)
    micro, ref = twins(model, "mse", sgd, tflm_train.TinyPropV2(), batch_size=4)
    results, _ = run_parity(micro, ref, x, y, steps=STEPS, batch_size=4)
    trained = [a.trained for a, _ in results]
    assert any(0 < t < 4 for t in trained), "no partly skipped batch: the divide-by-trained path is untested"
    assert any(t == 0 for t in trained), "no all-skipped batch: the schedule-advances-anyway path is untested"
    assert micro.counters["steps"] == STEPS and micro.counters["updates"] < STEPS


def test_parity_batch4_tinypropv2_momentum_crossentropy():
    sgd = tflm_train.SGD(0.02, momentum=0.9, weight_decay=1e-3)
    model, x, y = H.build_parity_mlp("mlp_a", "sparse_categorical_crossentropy", seed=3)
    micro, ref = twins(model, "sparse_categorical_crossentropy", sgd, tflm_train.TinyPropV2(tau=0.4), batch_size=4)
    results, _ = run_parity(micro, ref, x, y, steps=STEPS, batch_size=4)
    assert any(0 < a.trained < 4 for a, _ in results)


def test_parity_batch4_full_mse():
    model, x, y = H.build_parity_mlp("mlp_c", "mse", seed=4)
    micro, ref = twins(model, "mse", tflm_train.SGD(0.2), tflm_train.Full(), batch_size=4)
    run_parity(micro, ref, x, y, steps=60, batch_size=4)


def test_parity_batch1_momentum_tinyprop():
    """Batch 1 with momentum: every weight moves (velocity), only kept rows get a gradient."""
    model, x, y = H.build_parity_mlp("mlp_b", "sparse_categorical_crossentropy", seed=5)
    micro, ref = twins(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.02, momentum=0.8),
                       tflm_train.TinyProp())
    run_parity(micro, ref, x, y)


@pytest.mark.parametrize("trainable", [2, ["a1", "a3"]], ids=["last2", "a1+a3"])
def test_parity_partly_frozen(trainable):
    """Frozen Dense layers: before the first trainable one (no backward), and between
    trainable ones (dense input gradient, n_out*n_in MACs)."""
    model, x, y = H.build_parity_mlp("mlp_a", "sparse_categorical_crossentropy", seed=6)
    micro, ref = twins(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.05), tflm_train.TinyProp(),
                       trainable=trainable)
    before = micro_weights(micro.model_bytes)
    results, _ = run_parity(micro, ref, x, y, steps=100)
    after = micro_weights(micro.model_bytes)
    frozen = {"a1"} if trainable == 2 else {"a2"}
    for name in frozen:
        assert np.array_equal(before[name][0], after[name][0]) and np.array_equal(before[name][1], after[name][1])
    index = [1, 2] if trainable == 2 else [0, 2]
    for a, _ in results:
        fwd, bwd = expected_macs([20, 16, 8, 4], list(np.asarray(a.sample_k)[0]), not a.skipped, index)
        assert (a.forward_macs, a.backward_macs) == (fwd, bwd)


def test_parity_frozen_output_layer_tinypropv2():
    """The last Dense layer frozen: its dense input gradient is needed before the gate
    can look at the last trainable layer's error, so both trainers pay it (n_out*n_in
    MACs) even for a sample the gate then skips."""
    model, x, y = H.build_parity_mlp("mlp_a", "sparse_categorical_crossentropy", seed=7)
    # The paper's ratios (s_max 0.9 < 1), so a k below n shows that nothing forced k = n.
    policy = tflm_train.TinyPropV2(s_min=0.1, s_max=0.9, zeta=0.5, tau=0.5)
    micro, ref = twins(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.05), policy,
                       trainable=["a1", "a2"])
    results, _ = run_parity(micro, ref, x, y, steps=100)
    skipped = [a for a, _ in results if a.skipped]
    assert skipped and all(a.backward_macs == 8 * 4 for a in skipped)
    # a2 feeds a frozen layer, not the softmax: dense_output (the default) leaves its k to TinyProp.
    assert micro.policy.dense_output
    assert all(np.asarray(a.sample_k)[0, -1] < 8 for a, _ in results if not a.skipped)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy"])
def test_parity_other_losses(loss):
    """One-hot cross-entropy (softmax logits) and binary cross-entropy (sigmoid
    logits, mean over the outputs) with TinyProp."""
    keras.utils.set_random_seed(11)
    model = keras.Sequential([
        keras.Input((20,)),
        keras.layers.Dense(16, activation="relu", name="o1"),
        keras.layers.Dense(4, activation="softmax" if loss == "categorical_crossentropy" else "sigmoid", name="o2"),
    ])
    x, _, onehot = H.class_data((20,), 4, H.PARITY_SAMPLES, seed=11)
    micro, ref = twins(model, loss, tflm_train.SGD(0.05), tflm_train.TinyProp())
    run_parity(micro, ref, x, onehot, steps=100)


def test_fit_matches():
    """ReferenceTrainer.fit shuffles as MicroTrainer.fit (same seed) and logs the same."""
    model, x, y = H.build_parity_mlp("mlp_a", "mse", seed=12)
    micro, ref = twins(model, "mse", tflm_train.SGD(0.01), tflm_train.TinyPropV2())
    got = micro.fit(x[:100], y[:100], epochs=2, batch_size=2, verbose=0).history
    want = ref.fit(x[:100], y[:100], epochs=2, batch_size=2)
    for key in ("skipped", "forward_macs", "backward_macs"):
        assert got[key] == want[key], key
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=VALUE_RTOL)
    assert_weights_close(micro, ref)


def test_parity_through_a_near_tie():
    """A run that reaches a float32 near-tie in the top-k selection.

    StaticTopK(0.3, dense_output=False) keeps k=1 of mlp_a's 4 softmax outputs. With cross-entropy the
    label's error |p_c - 1| = sum_{j != c} p_j is never below any other |p_j|, so
    top-1 always keeps the label row; only the label row ever moves and the logits
    grow without bound (the loss explodes after ~80 steps at this rate, in both
    trainers alike). A confidently wrong sample then has two errors that differ by
    the tiny leftover probability: at step 87 of this run the reference's errors were
    [1.16e-08, 3.75e-11, -0.979179323, 0.979179382] (label 2): mathematically |delta_2|
    is larger by 1.2e-8, TensorFlow's rounding made |delta_3| larger by one ulp, and the
    C++ kept row 2. Such a step is not a defect of either trainer; run_parity accepts
    it only where the reference itself saw the near-tie (and takes over the C++'s
    weights there), and checks everything else exactly as usual."""
    model, x, y = H.build_parity_mlp("mlp_a", "sparse_categorical_crossentropy")
    micro, ref = twins(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.05),
                       tflm_train.StaticTopK(0.3, dense_output=False))
    _, resyncs = run_parity(micro, ref, x, y, steps=100)
    for r in resyncs:
        assert r["layer"] == "a3" and r["kind"] == "selection_tie" and r["kth"] - r["next"] <= 1e-5 * r["largest"]
    print(f"selection ties decided differently by float32 rounding: {resyncs}")


def test_cpp_cross_entropy_loss_accurate_for_confident_samples():
    """The loss a trainer reports is Keras': for a confident sample the C++'s
    `LogSumExp(z) - z[label]` (max + log(sum) first, then the subtraction) loses the
    small loss to cancellation, an absolute error of ~ulp(max z). Logits from step 109
    of the StaticTopK(0.3) run above: exact loss 0.00173418612 (float64), Keras
    0.00173418270, C++ 0.00173568726 (relative error 8.7e-4). Computing
    `logf(sum) - (z[label] - max)` would keep it to a few ulp of the result."""
    logits = np.array([54.19261441, -3.88840627, 37.98112045, 60.54896618], np.float32)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(4, activation="softmax", name="out")])
    model.get_layer("out").set_weights([np.zeros((1, 4), np.float32), logits])
    micro = tflm_train.MicroTrainer(tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                                       optimizer=tflm_train.SGD(0.0)))
    ref = ReferenceTrainer(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.0))
    x, label = np.zeros((1, 1), np.float32), np.array([3.0], np.float32)
    z = logits.astype(np.float64)
    exact = np.log(np.sum(np.exp(z - z.max()))) - (z[3] - z.max())
    np.testing.assert_allclose(ref.evaluate(x, label)[0], exact, rtol=VALUE_RTOL)  # Keras' value
    np.testing.assert_allclose(micro.train_step(x, label).sample_loss[0], exact, rtol=VALUE_RTOL,
                               err_msg="C++ sparse cross-entropy loss of a confident sample")
