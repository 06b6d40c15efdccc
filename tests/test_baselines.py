"""The baselines (docs/baselines.md): LastLayers, BiasOnly, SparseUpdate, TinyTrain.

- The C++ trainer and the reference make the same choice (layers, channels) and take
  the same steps: k, skips and MACs identical, weights close (run_parity).
- What is frozen stays bit-identical, also under momentum and weight decay.
- The MAC accounting follows the rule: weight gradients of the trained channels,
  dense input gradients above the lowest layer that trains, nothing below it.
- Bad parameters and impossible combinations are clear errors, from Python and C++.
"""

import json

import numpy as np
import pytest

import tflm_train
from tflm_train import BiasOnly, LastLayers, SparseUpdate, TinyTrain
from tflm_train.policies import parse_policy, policy_from_dict
from tflm_train.reference import ReferenceTrainer

import cnn_models as C
import helpers as H
from test_reference_parity import twins

LOSS = "sparse_categorical_crossentropy"


def _changed_rows(before, after):
    """Per tensor: how many output channels (rows of a kernel, entries of a bias) changed."""
    out = []
    for a, b in zip(before, after):
        moved = a != b
        out.append(int(moved.reshape(-1, a.shape[-1]).any(axis=0).sum()) if a.ndim == 4 and a.shape[0] == 1
                   else int(moved.reshape(len(a), -1).any(axis=1).sum()) if a.ndim > 1 else int(moved.sum()))
    return out


def _mlp():
    model, _, _ = H.build_parity_mlp("mlp_a", LOSS, seed=4)   # 3 dense layers
    x, labels, _ = H.class_data(model.inputs[0].shape[1:], model.outputs[0].shape[-1], 120, seed=4)
    return model, x, labels


def _cnn():
    import keras

    keras.utils.set_random_seed(5)
    model = C.paper_cnn_2d()
    C.randomize(model, 5)
    x, labels, _ = H.class_data((28, 28, 1), 10, 40, seed=5)
    return model, x, labels


POLICIES = [LastLayers(1), LastLayers(2), BiasOnly(), SparseUpdate(2, {-2: 0.5}),
            SparseUpdate(3, {-2: 0.25, 0: 1.0}), TinyTrain(samples=5, mac_budget=0.3)]
IDS = ["last1", "last2", "bias_only", "sparse_update", "sparse_update_first_full", "tiny_train"]


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_parity_mlp(policy):
    model, x, y = _mlp()
    micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), policy)
    H.run_parity(micro, ref, x, y, steps=40, max_resync_share=0.0)
    if isinstance(policy, TinyTrain):
        assert micro.counters["skipped"] == policy.samples


@pytest.mark.parametrize("policy", [LastLayers(2), BiasOnly(), SparseUpdate(3, {-2: 0.5, -3: 0.25}),
                                    TinyTrain(samples=4, mac_budget=0.2)],
                         ids=["last2", "bias_only", "sparse_update", "tiny_train"])
def test_parity_cnn(policy):
    model, x, y = _cnn()
    micro, ref = twins(model, LOSS, tflm_train.SGD(0.02), policy)
    H.run_parity(micro, ref, x, y, steps=12, max_resync_share=0.0)


def test_frozen_parameters_stay_bit_identical():
    model, x, y = _mlp()
    model_bytes = H.convert(model, optimizer=tflm_train.SGD(0.05, momentum=0.9, weight_decay=0.01))
    for policy, moving in ((LastLayers(1), [0, 0, 0, 0, 1, 1]), (BiasOnly(), [0, 1, 0, 1, 0, 1]),
                           (SparseUpdate(2, {-2: 1.0}), [0, 0, 1, 1, 1, 1])):
        micro = tflm_train.MicroTrainer(model_bytes, policy=policy)
        before = micro.get_weights()
        micro.fit(x, y, epochs=1, verbose=0)
        changed = [c > 0 for c in _changed_rows(before, micro.get_weights())]
        assert changed == [bool(m) for m in moving], (policy, changed)


def test_sparse_update_trains_the_largest_norm_channels():
    model, x, y = _mlp()
    micro = tflm_train.MicroTrainer(H.convert(model), policy=SparseUpdate(2, {-2: 0.5}))
    before = micro.get_weights()
    micro.fit(x[:30], y[:30], epochs=1, verbose=0)
    kernel = before[2]                                     # layer -2, TFLite [out, in]
    norms = np.add.accumulate(kernel * kernel, axis=1, dtype=np.float32)[:, -1]
    want = set(np.argsort(-norms, kind="stable")[:round(0.5 * len(norms))].tolist())
    moved = set(np.flatnonzero((micro.get_weights()[2] != kernel).any(axis=1)).tolist())
    assert moved == want
    assert np.array_equal(micro.get_weights()[0], before[0])  # below the bias range: frozen


def test_mac_accounting():
    """MLP 64-32-16-10 style: per-sample backward MACs from the rule, by hand."""
    model, x, y = _mlp()
    micro = tflm_train.MicroTrainer(H.convert(model), policy=LastLayers(2))
    dims = [op.weight_shape for op in micro.info.trainable_layers]     # [out, in]
    r = micro.train_step(x[:1], y[:1])
    (o0, i0), (o1, i1), (o2, i2) = dims
    # head: weights + input gradient; layer -2: weights only (the lowest that trains)
    assert r.backward_macs == o2 * i2 * 2 + o1 * i1
    micro = tflm_train.MicroTrainer(H.convert(model), policy=BiasOnly())
    r = micro.train_step(x[:1], y[:1])
    assert r.backward_macs == o2 * i2 + o1 * i1  # input gradients above the first layer, no weights


def test_tiny_train_selection_counts_in_effort_and_respects_budget():
    model, x, y = _cnn()
    model_bytes = H.convert(model, optimizer=tflm_train.SGD(0.02))
    full = tflm_train.MicroTrainer(model_bytes, policy=tflm_train.Full())
    full_macs = full.train_step(x[:1], y[:1]).backward_macs
    micro = tflm_train.MicroTrainer(model_bytes, policy=TinyTrain(samples=3, mac_budget=0.1))
    selection = [micro.train_step(x[i:i + 1], y[i:i + 1]) for i in range(3)]
    assert all(s.trained == 0 and s.backward_macs > 0 for s in selection)
    trained = [micro.train_step(x[i:i + 1], y[i:i + 1]) for i in range(3, 10)]
    assert all(s.trained == 1 for s in trained)
    # The budget bounds the chosen channels' MACs (ReLU-zeroed errors aside, the same).
    assert max(s.backward_macs for s in trained) <= 0.1 * full_macs
    micro.reset_policy_state()                                # selects anew
    assert micro.train_step(x[:1], y[:1]).trained == 0


def test_memory_budget_limits_the_selection():
    model, x, y = _cnn()
    model_bytes = H.convert(model, optimizer=tflm_train.SGD(0.02))
    spent = []
    for memory in (None, 20000):
        micro = tflm_train.MicroTrainer(model_bytes, policy=TinyTrain(samples=3, mac_budget=1.0,
                                                                      memory_budget=memory))
        micro.fit(x[:10], y[:10], epochs=1, shuffle=False, verbose=0)
        spent.append(micro.train_step(x[10:11], y[10:11]).backward_macs)
    assert spent[1] < spent[0]


def test_policy_round_trip_through_the_plan():
    model, _, _ = _mlp()
    for policy in (LastLayers(2), BiasOnly(), SparseUpdate(3, {-2: 0.5, -3: 0.25}),
                   TinyTrain(samples=7, mac_budget=0.5, memory_budget=4096)):
        info = tflm_train.read_model_info(H.convert(model, policy=policy))
        assert info.policy == policy, (info.policy, policy)
    # Non-negative layer indices are stored from the output.
    info = tflm_train.read_model_info(H.convert(model, policy=SparseUpdate(3, {1: 0.5})))
    assert info.policy == SparseUpdate(3, {-2: 0.5})


def test_parse_policy():
    assert parse_policy("lastlayers:2") == LastLayers(2)
    assert parse_policy("bias_only") == BiasOnly()
    scheme = {"bias_layers": 3, "weight_layers": {"-2": 0.5}}
    assert parse_policy("sparseupdate:" + json.dumps(scheme)) == SparseUpdate(3, {-2: 0.5})
    assert parse_policy("tinytrain:samples=20,mac_budget=0.2") == TinyTrain(20, 0.2)
    with pytest.raises(ValueError, match="JSON"):
        parse_policy("sparseupdate:{bias_layers: 3}")
    with pytest.raises(ValueError, match="integer"):
        parse_policy("tinytrain:samples=2.5")


@pytest.mark.parametrize("make, message", [
    (lambda: LastLayers(0), "n must be"),
    (lambda: SparseUpdate(-1), "bias_layers"),
    (lambda: SparseUpdate(2, {-2: 1.5}), "ratio"),
    (lambda: SparseUpdate(2, [0.5]), "dict"),
    (lambda: TinyTrain(samples=0), "samples"),
    (lambda: TinyTrain(mac_budget=0.0), "mac_budget"),
])
def test_bad_parameters(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


@pytest.mark.parametrize("policy, sgd, message", [
    (SparseUpdate(1, {-2: 0.5}), tflm_train.SGD(0.1), "within the last bias_layers"),
    (SparseUpdate(5), tflm_train.SGD(0.1), "exceeds"),
    (SparseUpdate(2, {-2: 0.5}), tflm_train.SGD(0.1, momentum=0.9), "momentum"),
    (TinyTrain(), tflm_train.SGD(0.1, weight_decay=0.01), "momentum or weight decay"),
])
def test_impossible_combinations(policy, sgd, message):
    model, _, _ = _mlp()
    model_bytes = H.convert(model, optimizer=sgd)
    with pytest.raises(tflm_train.InvalidArgumentError, match=message):
        tflm_train.MicroTrainer(model_bytes, policy=policy)
    with pytest.raises(ValueError, match=message):
        ReferenceTrainer(H.clone(model), loss=LOSS, optimizer=sgd, policy=policy)
    with pytest.raises(tflm_train.ConversionError, match=message):  # the plan itself is refused
        H.convert(model, optimizer=sgd, policy=policy)


def test_bias_only_needs_a_bias():
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, use_bias=False),
                              keras.layers.Dense(3, activation="softmax", use_bias=False)])
    with pytest.raises(tflm_train.InvalidArgumentError, match="BiasOnly needs"):
        tflm_train.MicroTrainer(H.convert(model), policy=BiasOnly())


# --- every layer kind: depthwise (strided channel norms), separable, Conv1D, a residual DAG

VARIETY = [(SparseUpdate(3, {-2: 0.5, -3: 0.5}), "sparse_update"), (TinyTrain(samples=3, mac_budget=0.3), "tiny_train"),
           (BiasOnly(), "bias_only"), (LastLayers(2), "last2")]


@pytest.mark.parametrize("policy", [p for p, _ in VARIETY], ids=[i for _, i in VARIETY])
@pytest.mark.parametrize("config", ["depthwise_m2", "separable", "conv1d", "residual"])
def test_parity_layer_kinds(config, policy):
    import keras

    keras.utils.set_random_seed(2)
    model = C.REFERENCE_CNNS[config]("softmax")
    C.randomize(model, 2)
    n_layers = len(tflm_train.read_model_info(H.convert(model)).trainable_layers)
    if isinstance(policy, SparseUpdate) and n_layers < 3:
        policy = SparseUpdate(n_layers, {-2: 0.5})
    x, y = H.random_data(model, LOSS, 10, seed=2)
    micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), policy)
    H.run_parity(micro, ref, x, y, steps=10, max_resync_share=0.0)


@pytest.mark.parametrize("policy", [SparseUpdate(2, {-2: 0.5}), TinyTrain(samples=4, mac_budget=0.3), BiasOnly()],
                         ids=["sparse_update", "tiny_train", "bias_only"])
def test_parity_batches(policy):
    """Batches of 4: the gradient buffers of every layer, the selection inside a batch."""
    model, x, y = _mlp()
    micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), policy, batch_size=4)
    for i in range(0, 40, 4):
        a, b = micro.train_step(x[i:i + 4], y[i:i + 4]), ref.train_step(x[i:i + 4], y[i:i + 4])
        assert np.array_equal(a.sample_k, b.sample_k) and np.array_equal(a.sample_skipped, b.sample_skipped)
        assert (a.forward_macs, a.backward_macs) == (b.forward_macs, b.backward_macs)
        assert H._weights_differ(micro, ref) is None, f"batch at {i}"


# --- TinyTrain's measurement on every kind of layer output ----------------------------------

def _split_bias_conv1d():
    import keras

    L = keras.layers
    return keras.Sequential([keras.Input((12, 2)), L.Conv1D(4, 3, activation="relu", name="c0"),
                             L.Conv1D(1, 3, name="c"), L.Flatten(name="flat"),   # one filter: its bias in an ADD
                             L.Dense(6, activation="relu", name="d"), L.Dense(3, activation="softmax", name="out")])


def _linear_then_average_pool():
    import keras

    L = keras.layers   # outputs no backward step reads: TinyTrain must keep them alive
    return keras.Sequential([keras.Input((12, 12, 2)), L.Conv2D(6, 3, name="c0"), L.AveragePooling2D(1, name="p0"),
                             L.Conv2D(6, 3, padding="same", name="c1"), L.AveragePooling2D(2, name="p1"),
                             L.Flatten(name="f"), L.Dense(3, activation="softmax", name="out")])


def _tanh_mlp():
    return H.mlp(12, [16, 16, 16], 4, hidden_activation="tanh")   # TANH runs as its own op


@pytest.mark.parametrize("budget", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("build", [_split_bias_conv1d, _linear_then_average_pool, _tanh_mlp],
                         ids=["split_bias", "linear_then_average_pool", "tanh"])
def test_tiny_train_parity_on_layer_outputs(build, budget):
    import keras

    for seed in range(2):
        keras.utils.set_random_seed(seed)
        model = build()
        C.randomize(model, seed)
        x, y = H.random_data(model, LOSS, 8, seed=seed)
        micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), TinyTrain(samples=3, mac_budget=budget))
        H.run_parity(micro, ref, x, y, steps=8, max_resync_share=0.0)


def test_selection_ends_inside_a_batch():
    model, x, y = _mlp()
    micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), TinyTrain(samples=5, mac_budget=0.4), batch_size=4)
    for i in range(0, 24, 4):
        a, b = micro.train_step(x[i:i + 4], y[i:i + 4]), ref.train_step(x[i:i + 4], y[i:i + 4])
        assert np.array_equal(a.sample_k, b.sample_k) and np.array_equal(a.sample_skipped, b.sample_skipped)
        assert H._weights_differ(micro, ref) is None
    assert micro.counters["skipped"] == 5


def test_refused_step_restarts_the_measurement():
    model, x, y = _mlp()
    micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), TinyTrain(samples=3, mac_budget=0.4))
    for t in (micro, ref):
        t.train_step(x[:1], y[:1])
        with pytest.raises((tflm_train.NonFiniteError, FloatingPointError)):
            t.train_step(np.full_like(x[1:2], 3e38), y[1:2])
    # Three new measurement samples (skipped), then training, on both.
    for i in range(2, 8):
        a, b = micro.train_step(x[i:i + 1], y[i:i + 1]), ref.train_step(x[i:i + 1], y[i:i + 1])
        assert a.skipped == b.skipped == (i < 5), i
        assert H._weights_differ(micro, ref) is None


def test_frozen_layers_between_trained_ones():
    model, x, y = _mlp()
    names = [layer.name for layer in model.layers if layer.weights]
    trainable = [names[0], names[-1]]          # the middle layer is not in the plan
    for policy in (LastLayers(2), BiasOnly(), SparseUpdate(2, {-2: 0.5}), TinyTrain(samples=3, mac_budget=0.6)):
        micro, ref = twins(model, LOSS, tflm_train.SGD(0.05), policy, trainable=trainable)
        H.run_parity(micro, ref, x, y, steps=8, max_resync_share=0.0)


def test_sparse_update_keeps_its_channels_after_reset():
    """The channels are chosen when the trainer starts; reset_policy_state keeps them."""
    model, x, y = _mlp()
    micro = tflm_train.MicroTrainer(H.convert(model), policy=SparseUpdate(2, {-2: 0.5}))

    def moved_rows(fit):
        before = micro.get_weights()[2]
        micro.fit(*fit, epochs=1, verbose=0)
        return set(np.flatnonzero((micro.get_weights()[2] != before).any(axis=1)).tolist())

    first = moved_rows((x[:60], y[:60]))
    assert len(first) == round(0.5 * micro.get_weights()[2].shape[0])
    micro.reset_policy_state()
    assert moved_rows((x[60:], y[60:])) == first


def test_layer_named_twice_and_counts_too_large():
    model, _, _ = _mlp()
    with pytest.raises(ValueError, match="twice"):
        H.convert(model, policy=SparseUpdate(3, {0: 0.5, -3: 0.25}))
    for make in (lambda: TinyTrain(samples=2 ** 32), lambda: TinyTrain(memory_budget=2 ** 33)):
        with pytest.raises(ValueError, match="2\\*\\*32"):
            make()
    assert TinyTrain(samples=np.int64(4), mac_budget=np.float32(0.25)).samples == 4
