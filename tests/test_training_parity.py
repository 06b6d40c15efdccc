"""The C++ trainer (full backprop) reproduces Keras: GradientTape + keras SGD,
weight by weight, for every loss, with and without momentum, weight decay and
a cosine schedule with warm-up; whole epochs track Keras' per-step losses; the
trained file runs in real TFLM.

Tolerances (float32 throughout):
- One to a few steps: rtol 1e-5 per weight (docs/design.md: float32 sums, relative
  1e-5 per step). atol 1e-6 because many weights and biases sit near zero, where
  a relative bound is meaningless: the absolute error of an update is about
  lr * |g| * fan_in * eps = 0.1 * O(1) * 32 * 1.2e-7 ~ 4e-7.
- A whole epoch (up to 100 updates): per-step losses rtol 1e-4 (the brief's
  bound): per-step rounding differences of ~1e-7 compound through the updates.
- Inference of the trained file: as in test_convert.py, 1e-5.
"""

import numpy as np
import pytest

import keras

import tflm_train

import helpers as H

STEP_RTOL, STEP_ATOL = 1e-5, 1e-6
EPOCH_LOSS_RTOL = 1e-4
INFER_TOL = 1e-5

SHAPES = {
    "8-16-4": (8, [16], 4, "relu"),
    "12-10-6-5": (12, [10, 6], 5, ["tanh", "relu6"]),
    "20-32-16-8-3": (20, [32, 16, 8], 3, ["sigmoid", "linear", "relu6"]),
}


def _model(shape, loss, seed=0):
    input_dim, hidden, outputs, act = SHAPES[shape]
    model = H.mlp(input_dim, hidden, outputs, hidden_activation=act, final_activation=H.FINAL_ACTIVATION[loss],
                  seed=seed)
    H.randomize_biases(model, np.random.default_rng(seed + 1))
    return model


def _batches(x, y, batch_size):
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]


def _run_parity(model, loss, sgd, *, batch_size, steps, seed=0, trainable=None, convert_kwargs=None):
    """Trains `steps` batches with the C++ trainer and with Keras from the same
    weights and compares loss, learning rate and every weight after every step."""
    model_bytes = tflm_train.convert(model, loss=loss, optimizer=sgd, trainable=trainable, batch_size=batch_size,
                                     **(convert_kwargs or {}))
    assert H.weights_from_bytes(model_bytes).keys() == H.keras_weights(model).keys()
    trainer = tflm_train.MicroTrainer(model_bytes)
    reference = H.KerasReference(model, sgd, loss)
    rng = np.random.default_rng(seed + 50)
    out_shape = tuple(int(d) for d in model.outputs[0].shape[1:])
    x, y = H.make_data(loss, batch_size * steps, model.inputs[0].shape[1:], int(np.prod(out_shape)), rng)
    if loss != "sparse_categorical_crossentropy":
        y = y.reshape((len(y),) + out_shape)
    for step, (xb, yb) in enumerate(_batches(x, y, batch_size)):
        lr_keras = reference.learning_rate()
        result = trainer.train_step(xb, yb)
        loss_keras = reference.step(xb, yb)
        context = f"step {step}"
        assert not result.skipped and result.trained == len(xb)
        assert result.learning_rate == pytest.approx(lr_keras, rel=1e-6, abs=1e-9), context
        assert result.loss == pytest.approx(loss_keras, rel=STEP_RTOL, abs=STEP_ATOL), context
        H.assert_weights_close(H.weights_from_bytes(trainer.model_bytes), H.keras_weights(model),
                               rtol=STEP_RTOL, atol=STEP_ATOL, context=context)
    return trainer


# --- (a) single steps from identical weights -------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("loss", H.LOSSES)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_steps_match_keras(shape, loss, momentum, batch_size):
    model = _model(shape, loss)
    _run_parity(model, loss, tflm_train.SGD(0.1, momentum=momentum), batch_size=batch_size, steps=3)


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_weight_decay_matches_keras(loss, momentum, batch_size):
    model = _model("12-10-6-5", loss, seed=3)
    _run_parity(model, loss, tflm_train.SGD(0.1, momentum=momentum, weight_decay=0.05), batch_size=batch_size,
                steps=3)


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy"])
def test_cosine_schedule_with_warmup_matches_keras(loss, batch_size):
    # 7 steps: 2 of warm-up, 4 of decay, then held at alpha * peak.
    schedule = tflm_train.CosineDecay(4, alpha=0.1, warmup_steps=2, warmup_initial=0.01)
    model = _model("8-16-4", loss, seed=4)
    _run_parity(model, loss, tflm_train.SGD(0.2, momentum=0.5, schedule=schedule), batch_size=batch_size, steps=7)


def test_cosine_schedule_without_warmup_and_weight_decay_matches_keras():
    schedule = tflm_train.CosineDecay(3, alpha=0.0)
    model = _model("20-32-16-8-3", "mse", seed=5)
    _run_parity(model, "mse", tflm_train.SGD(0.1, weight_decay=0.01, schedule=schedule), batch_size=2, steps=5)


@pytest.mark.parametrize("name", list(H.BATTERY))
def test_battery_models_step_like_keras(name):
    """Backward through Reshape, Flatten, Activation/ReLU/Softmax layers, a softmax
    in the middle, no-bias layers and a Functional model."""
    model, loss = H.build_battery_model(name, seed=6)
    _run_parity(model, loss, tflm_train.SGD(0.1, momentum=0.5), batch_size=2, steps=3)


@pytest.mark.parametrize("trainable", [["d0", "d2"], ["d1", "out"], 2, ["out"]])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_partially_frozen_model_matches_keras(trainable, batch_size):
    """Frozen layers in front of, between and behind trainable ones; Keras trains the
    same subset (layer.trainable = False on the others)."""
    model = _model("20-32-16-8-3", "sparse_categorical_crossentropy", seed=7)
    dense = [layer.name for layer in model.layers]
    chosen = set(dense[-trainable:]) if isinstance(trainable, int) else set(trainable)
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy", optimizer=tflm_train.SGD(0.1),
                                     trainable=trainable)
    assert {op.name for op in tflm_train.read_model_info(model_bytes).trainable_layers} == chosen
    for layer in model.layers:
        layer.trainable = layer.name in chosen
    _run_parity(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.1, momentum=0.9),
                batch_size=batch_size, steps=3, trainable=trainable)


def test_layers_with_identical_constant_biases_train_like_keras():
    """A common Keras setup: bias_initializer=Constant(0.1) in two Dense layers of the
    same width. TensorFlow's converter then makes both FULLY_CONNECTED ops read ONE
    bias tensor; each layer must still train its own bias, as in Keras."""
    keras.utils.set_random_seed(8)
    init = keras.initializers.Constant(0.1)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(6, activation="relu", bias_initializer=init, name="d0"),
        keras.layers.Dense(6, activation="relu", bias_initializer=init, name="d1"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    _run_parity(model, "sparse_categorical_crossentropy", tflm_train.SGD(0.1), batch_size=1, steps=2)


def test_growing_the_batch_carries_momentum_and_schedule_over():
    """A batch-1 plan trained with a larger batch: MicroTrainer rebuilds the C++
    trainer for the larger batch and must carry weights, momentum and the schedule's
    step counter over, so the steps still match Keras."""
    model = _model("12-10-6-5", "categorical_crossentropy", seed=16)
    sgd = tflm_train.SGD(0.1, momentum=0.9, schedule=tflm_train.CosineDecay(6, alpha=0.2, warmup_steps=1))
    model_bytes = tflm_train.convert(model, loss="categorical_crossentropy", optimizer=sgd, batch_size=1)
    trainer = tflm_train.MicroTrainer(model_bytes)
    assert trainer.batch_size == 1
    reference = H.KerasReference(model, sgd, "categorical_crossentropy")
    x, y = H.make_data("categorical_crossentropy", 16, (12,), 5, np.random.default_rng(17))
    for step, (lo, hi) in enumerate([(0, 1), (1, 2), (2, 6), (6, 7), (7, 12), (12, 16)]):
        lr_keras = reference.learning_rate()
        result = trainer.train_step(x[lo:hi], y[lo:hi])
        loss_keras = reference.step(x[lo:hi], y[lo:hi])
        context = f"step {step} (batch of {hi - lo})"
        assert result.learning_rate == pytest.approx(lr_keras, rel=1e-6), context
        assert result.loss == pytest.approx(loss_keras, rel=STEP_RTOL, abs=STEP_ATOL), context
        H.assert_weights_close(H.weights_from_bytes(trainer.model_bytes), H.keras_weights(model),
                               rtol=STEP_RTOL, atol=STEP_ATOL, context=context)
    assert trainer.batch_size >= 5


@pytest.mark.parametrize("loss", H.LOSSES)
def test_evaluate_matches_keras(loss):
    model = _model("8-16-4", loss, seed=18)
    model_bytes = tflm_train.convert(model, loss=loss, optimizer=tflm_train.SGD(0.1))
    x, y = H.make_data(loss, 40, (8,), 4, np.random.default_rng(19))
    got = tflm_train.MicroTrainer(model_bytes).evaluate(x, y, return_dict=True)
    probs = model.predict(x, verbose=0)
    # Keras' mean loss over the samples (float32 sums of 40 values: rtol 1e-5).
    assert got["loss"] == pytest.approx(float(H.keras_loss(loss)(y, probs)), rel=STEP_RTOL)
    if loss == "sparse_categorical_crossentropy":
        assert got["accuracy"] == pytest.approx(np.mean(np.argmax(probs, 1) == y))
    elif loss == "categorical_crossentropy":
        assert got["accuracy"] == pytest.approx(np.mean(np.argmax(probs, 1) == np.argmax(y, 1)))
    elif loss == "binary_crossentropy":
        assert got["accuracy"] == pytest.approx(np.mean((probs > 0.5) == (y > 0.5)))
    else:
        assert set(got) == {"loss"}


# --- (b) whole epochs ------------------------------------------------------------------------

N_EPOCH = 100  # not a multiple of 8: the last batch has 4 samples


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("loss", H.LOSSES)
def test_one_epoch_tracks_keras_losses(loss, batch_size):
    keras.utils.set_random_seed(9)
    model = H.mlp(16, [32], 10 if "categorical" in loss else 4, hidden_activation="relu",
                  final_activation=H.FINAL_ACTIVATION[loss])
    H.randomize_biases(model, np.random.default_rng(9))
    sgd = tflm_train.SGD(0.1, momentum=0.5)
    model_bytes = tflm_train.convert(model, loss=loss, optimizer=sgd, batch_size=batch_size)
    x, y = H.make_data(loss, N_EPOCH, (16,), int(model.outputs[0].shape[-1]), np.random.default_rng(10))
    # Make the task learnable so the losses actually move.
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        cls = np.argmax(x[:, :10], axis=1)
        y = cls if loss == "sparse_categorical_crossentropy" else np.eye(10, dtype=np.float32)[cls]
    elif loss == "binary_crossentropy":
        y = (x[:, :4] > 0).astype(np.float32)
    else:
        y = (0.5 * x[:, :4] - 0.25 * x[:, 4:8]).astype(np.float32)

    trainer = tflm_train.MicroTrainer(model_bytes)
    loss_before = trainer.evaluate(x, y, return_dict=True)["loss"]
    reference = H.KerasReference(model, sgd, loss)
    got, want = [], []
    for xb, yb in _batches(x, y, batch_size):
        got.append(trainer.train_step(xb, yb).loss)
        want.append(reference.step(xb, yb))
    assert len(got) == -(-N_EPOCH // batch_size)
    np.testing.assert_allclose(got, want, rtol=EPOCH_LOSS_RTOL, atol=0)
    # Training did something (so the comparison is not trivially of constants).
    assert trainer.evaluate(x, y, return_dict=True)["loss"] < 0.95 * loss_before

    # fit(shuffle=False) runs exactly the same steps: bit-identical weights, and the
    # epoch loss is the sample-weighted mean of the step losses.
    fitted = tflm_train.MicroTrainer(model_bytes)
    history = fitted.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    assert [w.tobytes() for w in fitted.get_weights()] == [w.tobytes() for w in trainer.get_weights()]
    assert fitted.counters == dict(trainer.counters, epochs=1)  # fit counts the epoch, train_step does not
    sizes = [len(xb) for xb, _ in _batches(x, y, batch_size)]
    assert history.history["loss"][0] == pytest.approx(np.dot(got, sizes) / N_EPOCH, rel=1e-6)
    assert fitted.counters["steps"] == len(sizes) and fitted.counters["samples"] == N_EPOCH


# --- (c) the trained file ------------------------------------------------------------------

def test_trained_file_runs_in_tflm_and_reloads(tmp_path):
    model = _model("20-32-16-8-3", "sparse_categorical_crossentropy", seed=12)
    model_bytes = tflm_train.convert(model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(0.05, momentum=0.9), batch_size=8)
    rng = np.random.default_rng(13)
    x = rng.normal(size=(96, 20)).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1)
    trainer = tflm_train.MicroTrainer(model_bytes, seed=1)
    history = trainer.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x[:16], y[:16]))
    assert len(history.history["loss"]) == 3 and "val_loss" in history.history
    path = tmp_path / "trained.tflite"
    trainer.save(path)
    saved = path.read_bytes()
    assert saved == trainer.model_bytes != model_bytes

    x_test = rng.normal(size=(24, 20)).astype(np.float32)
    predicted = trainer.predict(x_test)
    np.testing.assert_allclose(H.tflm_predict(saved, x_test), predicted, rtol=INFER_TOL, atol=INFER_TOL)
    # The trained model differs from the untrained one.
    assert np.abs(predicted - model.predict(x_test, verbose=0)).max() > 1e-3
    # A trainer over the saved file (bytes or path) holds exactly the trained weights.
    np.testing.assert_array_equal(tflm_train.MicroTrainer(str(path)).predict(x_test), predicted)
    np.testing.assert_array_equal(tflm_train.MicroTrainer(saved).predict(x_test), predicted)
    # The weights inside the saved file, loaded into Keras, give Keras the same outputs.
    for name, (w, b) in H.weights_from_bytes(saved).items():
        model.get_layer(name).set_weights([w.T, b])
    np.testing.assert_allclose(model.predict(x_test, verbose=0), predicted, rtol=INFER_TOL, atol=INFER_TOL)


def test_fit_is_deterministic():
    model = _model("12-10-6-5", "categorical_crossentropy", seed=14)
    model_bytes = tflm_train.convert(model, loss="categorical_crossentropy", optimizer=tflm_train.SGD(0.1))
    x, y = H.make_data("categorical_crossentropy", 40, (12,), 5, np.random.default_rng(15))
    a = tflm_train.MicroTrainer(model_bytes, seed=3)
    b = tflm_train.MicroTrainer(model_bytes, seed=3)
    ha = a.fit(x, y, epochs=2, batch_size=4, verbose=0)
    hb = b.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert a.model_bytes == b.model_bytes
    assert ha.history == hb.history
    # A different shuffling seed takes a different path.
    c = tflm_train.MicroTrainer(model_bytes, seed=4)
    c.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert c.model_bytes != a.model_bytes
