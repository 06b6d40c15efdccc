"""Convolutional and time-series models, end to end: converted CNNs infer like
Keras in real TFLM and in the C++ trainer; one full-backprop step matches
tf.GradientTape + Keras SGD on a battery of layer configurations; TinyProp and
TinyPropV2 on the papers' CNNs and a MobileNetV2-style network match the
reference trainer; frozen prefixes do no backward work; the arena keeps only the
activations backward reads.

Tolerances (float32), as in the MLP tests:
- Inference: rtol/atol 1e-5 (test_convert.py gives the argument; a convolution's
  fan-in here is at most 144, so the bound holds with room).
- One step: every weight within 1e-5 of its tensor's scale (max |w|), and the loss
  rtol 1e-5. A convolution's weight gradient sums over every output position
  (up to 26x26 here), so its rounding is relative to the tensor, not to each weight.
- Reference parity: k per layer, skip decisions and MACs identical every step;
  weights within 1e-5 of each tensor's scale after every step. A TinyProp
  selection over a whole output map can meet a float32 near-tie at the k-th place
  (the reference flags it, see ReferenceTrainer.ambiguities): then the kept element
  differs, the weights may legitimately differ, and the reference takes over the
  C++'s weights and Ymax. Unflagged differences fail.
"""

import numpy as np
import pytest

import keras

import tflm_train
from tflm_train.reference import ReferenceTrainer

import cnn_models as C
import helpers as H

LOSS_RTOL = 1e-5
INFER_TOL = 1e-5


def _data(model, loss, samples, seed):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])
    x, labels, onehot = H.class_data(shape, classes, samples, seed)
    return x, (labels if loss == "sparse_categorical_crossentropy" else onehot)


# --- the layer battery: inference and one step against GradientTape -------------------------

@pytest.fixture(scope="module")
def layer_models():
    """name -> (model, loss, {batch size: converted bytes}); models keep their initial weights."""
    out = {}
    for i, (name, (builder, loss)) in enumerate(C.LAYER_CONFIGS.items()):
        keras.utils.set_random_seed(100 + i)
        model = builder(loss)
        C.randomize(model, 200 + i)
        sgd = tflm_train.SGD(0.05)
        out[name] = (model, loss, {b: tflm_train.convert(model, loss=loss, optimizer=sgd, batch_size=b)
                                   for b in (1, 3)})
    return out


def test_battery_has_at_least_20_configurations():
    assert len(C.LAYER_CONFIGS) >= 20


@pytest.mark.parametrize("name", list(C.LAYER_CONFIGS))
def test_layer_config_infers_like_keras_in_tflm_and_trainer(layer_models, name):
    model, loss, converted = layer_models[name]
    x, _ = _data(model, loss, 8, seed=1)
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(H.tflm_predict(converted[1], x), want, rtol=INFER_TOL, atol=INFER_TOL)
    np.testing.assert_allclose(tflm_train.MicroTrainer(converted[1]).predict(x), want, rtol=INFER_TOL,
                               atol=INFER_TOL)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("name", list(C.LAYER_CONFIGS))
def test_layer_config_one_step_matches_gradient_tape(layer_models, name, batch_size):
    model, loss, converted = layer_models[name]
    model = H.clone(model)  # the fixture's model stays at its initial weights
    x, y = _data(model, loss, batch_size, seed=2)
    trainer = tflm_train.MicroTrainer(converted[batch_size])
    result = trainer.train_step(x, y)
    keras_loss = H.KerasReference(model, tflm_train.SGD(0.05), loss).step(x, y)
    assert result.loss == pytest.approx(keras_loss, rel=LOSS_RTOL, abs=1e-7)
    assert result.trained == batch_size and not result.skipped
    H.assert_close_to_scale(H.weights_from_bytes(trainer.model_bytes), H.keras_unit_weights(model),
                          context=f"{name} batch {batch_size}")


# --- the papers' CNNs and a MobileNetV2-style network ----------------------------------------

PAPER_MODELS = {"cnn_2d": C.paper_cnn_2d, "cnn_1d": C.paper_cnn_1d, "mobilenet_v2_style": C.mobilenet_v2_style}


def _paper_model(name, seed=0):
    keras.utils.set_random_seed(seed)
    model = PAPER_MODELS[name]()
    C.randomize(model, seed + 1)
    return model


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_paper_model_infers_like_keras_in_tflm(name):
    model = _paper_model(name)
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.05))
    x, _ = _data(model, "sparse_categorical_crossentropy", 4, seed=3)
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(H.tflm_predict(model_bytes, x), want, rtol=INFER_TOL, atol=INFER_TOL)
    np.testing.assert_allclose(tflm_train.MicroTrainer(model_bytes).predict(x), want, rtol=INFER_TOL,
                               atol=INFER_TOL)


@pytest.mark.parametrize("name", ["cnn_2d", "cnn_1d"])
def test_paper_cnn_one_step_matches_gradient_tape(name):
    model = _paper_model(name)
    sgd = tflm_train.SGD(0.05)
    trainer = tflm_train.MicroTrainer(tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=sgd))
    x, y = _data(model, "sparse_categorical_crossentropy", 1, seed=4)
    result = trainer.train_step(x, y)
    keras_loss = H.KerasReference(model, sgd, "sparse_categorical_crossentropy").step(x, y)
    assert result.loss == pytest.approx(keras_loss, rel=LOSS_RTOL)
    H.assert_close_to_scale(H.weights_from_bytes(trainer.model_bytes), H.keras_unit_weights(model), context=name)


def twins(model, policy, trainable=None, sgd=None, loss="sparse_categorical_crossentropy"):
    sgd = sgd or tflm_train.SGD(0.05)
    micro = tflm_train.MicroTrainer(tflm_train.convert(model, loss=loss, optimizer=sgd, policy=policy,
                                                       trainable=trainable))
    ref = ReferenceTrainer(H.clone(model), loss=loss, optimizer=sgd, policy=policy, trainable=trainable)
    return micro, ref


POLICIES = {
    "full": tflm_train.Full(),
    "static_topk": tflm_train.StaticTopK(0.3),
    "tinyprop": tflm_train.TinyProp(),
    "tinypropv2": tflm_train.TinyPropV2(),
}


@pytest.mark.parametrize("policy", ["static_topk", "tinyprop", "tinypropv2"])
@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_policy_parity_with_reference_on_cnns(name, policy):
    model = _paper_model(name, seed=5)
    micro, ref = twins(model, POLICIES[policy])
    x, y = _data(model, "sparse_categorical_crossentropy", 24, seed=6)
    resyncs = H.run_parity(micro, ref, x, y, steps=24)
    exact = ("samples", "forward_macs") + (() if any(kind != "selection_tie" for _, kind in resyncs)
                                           else ("trained", "skipped", "backward_macs"))
    for key in exact:
        assert micro.counters[key] == ref.counters[key], key
    if policy == "tinypropv2":
        assert 0 < micro.counters["trained"] <= micro.counters["samples"]
    assert micro.counters["backward_macs"] < _full_backward_macs(name)


def _full_backward_macs(name):
    model = _paper_model(name, seed=5)
    micro, _ = twins(model, tflm_train.Full())
    x, y = _data(model, "sparse_categorical_crossentropy", 24, seed=6)
    for i in range(24):
        micro.train_step(x[i:i + 1], y[i:i + 1])
    return micro.counters["backward_macs"]


def test_mobilenet_v2_style_full_step_matches_reference():
    model = _paper_model("mobilenet_v2_style", seed=7)
    micro, ref = twins(model, tflm_train.Full())
    x, y = _data(model, "sparse_categorical_crossentropy", 3, seed=8)
    H.run_parity(micro, ref, x, y, steps=3)


# --- frozen prefixes ----------------------------------------------------------------------

def test_frozen_prefix_does_no_backward_before_the_first_trainable_layer():
    model = _paper_model("cnn_2d", seed=9)
    micro, ref = twins(model, tflm_train.Full(), trainable=2)
    assert micro.info.trainable_layers and [op.name for op in micro.info.trainable_layers] == ["fc1", "fc2"]
    x, y = _data(model, "sparse_categorical_crossentropy", 4, seed=10)
    for i in range(4):
        a = micro.train_step(x[i:i + 1], y[i:i + 1])
        b = ref.train_step(x[i:i + 1], y[i:i + 1])
        # fc1 (144 -> 32): weight gradient only; fc2 (32 -> 10): weight and input gradient.
        assert a.backward_macs == 32 * 144 + 2 * 10 * 32 == b.backward_macs
    # The convolutions' weights did not move.
    before = H.keras_unit_weights(model)
    after = H.weights_from_bytes(micro.model_bytes)
    for name in ("conv1", "conv2", "conv3"):
        np.testing.assert_array_equal(after[name][0], before[name][0])


def test_first_trainable_convolution_computes_no_input_gradient():
    model = _paper_model("cnn_2d", seed=11)
    micro, ref = twins(model, tflm_train.Full(), trainable=["conv2", "conv3", "fc1", "fc2"])
    x, y = _data(model, "sparse_categorical_crossentropy", 2, seed=12)
    a = micro.train_step(x[:1], y[:1])
    b = ref.train_step(x[:1], y[:1])
    conv2 = 11 * 11 * 16 * (3 * 3 * 8)      # weight gradient only
    conv3 = 2 * 3 * 3 * 16 * (3 * 3 * 16)   # weight and input gradient
    fc1, fc2 = 2 * 32 * 144, 2 * 10 * 32
    assert a.backward_macs == conv2 + conv3 + fc1 + fc2 == b.backward_macs


# --- memory ------------------------------------------------------------------------------

def test_arena_keeps_only_activations_backward_reads():
    model = _paper_model("cnn_2d", seed=13)
    sgd = tflm_train.SGD(0.05)
    all_trainable = tflm_train.MicroTrainer(tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                                               optimizer=sgd))
    head_only = tflm_train.MicroTrainer(tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                                           optimizer=sgd, trainable=2))
    def aligned(counts):  # the arena hands out 16-byte aligned blocks
        return sum(-(-4 * n // 16) * 16 for n in counts)

    every_activation = [28 * 28, 26 * 26 * 8, 13 * 13 * 8, 11 * 11 * 16, 5 * 5 * 16, 3 * 3 * 16, 32, 10, 10]
    full, head = all_trainable.arena_report["activation_bytes"], head_only.arena_report["activation_bytes"]
    # Training everything, backward reads every activation of this model: the fused ReLUs
    # their outputs, the pools their inputs, each layer its input.
    assert full == aligned(every_activation)
    # The head-only trainer keeps the input, conv3's output (fc1 reads it), fc1's and fc2's
    # outputs and the softmax output; the rest share one region that holds the largest
    # pair alive together: conv1's output while pool1 reads it and writes its own.
    assert head == aligned([28 * 28, 3 * 3 * 16, 32, 10, 10]) + aligned([26 * 26 * 8 + 13 * 13 * 8])
    assert head < 0.8 * full
    for report in (all_trainable.arena_report, head_only.arena_report):  # the split adds up
        assert report["required_bytes"] == sum(report[k] for k in ("bookkeeping_bytes", "activation_bytes",
                                                                   "gradient_bytes", "optimizer_bytes",
                                                                   "scratch_bytes"))
    # Training still works in the smaller arena.
    x, y = _data(model, "sparse_categorical_crossentropy", 2, seed=14)
    assert not head_only.train_step(x[:1], y[:1]).skipped


def test_arena_shares_activations_backward_does_not_read():
    """In the MobileNetV2-style net the linear projections feed only an Add (whose
    backward reads nothing), so their outputs live in the shared buffers."""
    model = _paper_model("mobilenet_v2_style", seed=15)
    trainer = tflm_train.MicroTrainer(tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                                         optimizer=tflm_train.SGD(0.05)))
    outputs = [int(np.prod(op.output_shape)) for op in trainer.info.ops if op.kind != "Reshape"]
    unshared = sum(-(-4 * n // 16) * 16 for n in [int(np.prod(trainer.info.input_shape))] + outputs)
    assert trainer.arena_report["activation_bytes"] < unshared
    x, y = _data(model, "sparse_categorical_crossentropy", 2, seed=16)
    assert trainer.train_step(x[:1], y[:1]).trained == 1
